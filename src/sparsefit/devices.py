"""Which device a stage runs on, and the arithmetic it trains in there.

One place turns ``--device auto|cpu|cuda|cuda:N|mps`` into a torch device, so that asking for a GPU
that is not there is one clear line (exit 2), never a CUDA traceback halfway through a run.

Example:
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    >>> training_precision("auto", "cpu", hidden_size=128)
    'float32'
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Literal

from sparsefit.errors import SparsefitError

Precision = Literal["float32", "bfloat16", "float16"]
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def resolve_device(spec: str | None, *, asked: str | None = None) -> str:
    """The torch device for a ``--device`` value: ``auto`` takes CUDA when present, else the CPU.

    Raises a :class:`SparsefitError` for a malformed value or a device this machine does not have
    (``asked``: the value the user gave, when ``spec`` is it after :func:`pin_cuda_device`).
    """
    import torch

    spec = (spec or "auto").strip().lower()
    asked = (asked or spec).strip().lower()
    if not _DEVICE.fullmatch(spec):
        raise SparsefitError(f"unknown device '{spec}'", hint=f"use one of {DEVICE_CHOICES}")
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise SparsefitError("--device mps: this machine has no Apple GPU (MPS)", hint="use --device auto or cpu")
        return "mps"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        build = "a CPU-only torch build" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
        raise SparsefitError(f"--device {asked}: no CUDA GPU is available here ({build})",
                             hint="use --device auto (GPU when present, else CPU) or --device cpu")
    if os.environ.get("LOCAL_RANK", "").isdigit():  # torchrun: one GPU per process, by its local rank
        spec = f"cuda:{int(os.environ['LOCAL_RANK']) % count}"
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= count:
        raise SparsefitError(f"--device {spec}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}",
                             hint=f"use --device cuda:0 … cuda:{count - 1}")
    return spec


@functools.cache
def bfloat16_is_fast() -> bool:
    """True on CPUs with bfloat16 matrix instructions (AMX-BF16 or AVX512-BF16), where bfloat16 pays."""
    import torch

    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def pin_cuda_device(spec: str | None) -> str | None:
    """Make ``cuda:N`` the only GPU this process sees, before anything starts CUDA; returns the spec to resolve.

    The Hugging Face trainer trains on ``cuda:0`` (and spreads over every visible GPU with DataParallel),
    so a single-process run on GPU N sets ``CUDA_VISIBLE_DEVICES=N`` and trains on what is then ``cuda:0``.
    Under torchrun, or where ``CUDA_VISIBLE_DEVICES`` is already set, nothing changes.

    Example:
        >>> pin_cuda_device("cpu")
        'cpu'
    """
    if spec is None or not re.fullmatch(r"\s*cuda:\d{1,3}\s*", spec.lower()):
        return spec
    if "LOCAL_RANK" in os.environ or "CUDA_VISIBLE_DEVICES" in os.environ:
        return spec
    os.environ["CUDA_VISIBLE_DEVICES"] = spec.split(":")[1].strip()
    return "cuda:0"


def is_cuda(device: str) -> bool:
    """True for ``cuda`` and ``cuda:N``."""
    return device.startswith("cuda")


def training_precision(setting: str, device: str, *, hidden_size: int) -> Precision:
    """The arithmetic a round trains in for a ``train_precision`` setting on ``device``.

    On CUDA ``auto`` is mixed precision: bfloat16 where the GPU supports it (Ampere and newer), else
    float16 with a loss scaler. On the CPU ``auto`` is bfloat16 only on CPUs with AMX or AVX512-BF16 and
    models of hidden size 256 or more: there minilm-l6 (384) steps 1.6x faster, while splade-tiny (128),
    whose time goes to the vocabulary rather than to matrix multiplies, gains nothing.

    Example:
        >>> training_precision("float32", "cuda", hidden_size=384)
        'float32'
        >>> training_precision("auto", "cpu", hidden_size=128)
        'float32'
    """
    if setting not in ("auto", "float32", "bfloat16", "float16"):
        raise SparsefitError(f"unknown training precision '{setting}'", hint="use auto, float32, bfloat16 or float16")
    if setting != "auto":
        if setting == "float16" and not is_cuda(device):
            raise SparsefitError("float16 training needs a CUDA GPU (it relies on a loss scaler there)",
                                 hint="use --train-precision bfloat16 or float32 on the CPU")
        return setting  # type: ignore[return-value]
    if is_cuda(device):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "cpu":
        return "bfloat16" if hidden_size >= 256 and bfloat16_is_fast() else "float32"
    return "float32"
