"""A SPLADE model as ONNX, for serving stacks outside Python.

What is exported is the graph the common SPLADE ONNX consumers run: the SPLADE models Qdrant's fastembed
serves (``SparseTextEmbedding``) and optimum's ``fill-mask`` export (what sentence-transformers' ONNX
backend builds) are a ``model.onnx`` whose inputs are the tokenizer's ``input_ids``, ``attention_mask``
(and ``token_type_ids`` for BERT) and whose output is the masked-LM ``logits`` [batch, tokens,
vocabulary]; the consumer pools them: ``max over tokens of log(1 + relu(logits)) · attention_mask``. The
folder also holds the tokenizer and config files, and ``sparsefit_onnx.json`` says the pooling, so any
ONNX runtime can use it.

Only plain SPLADE models export (query and document share the network); an inference-free model's query
side is a lookup table, not a network, and is refused with a clear error.

Example:
    >>> folder = export_onnx(load_encoder("runs/x/model"), "runs/x/onnx")          # doctest: +SKIP
    >>> onnx_vectors(folder, ["cordless drill"]).nnz > 0                             # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.models.encoder import Encoder

OPSET = 17
POOLING = {"logits": "logits", "activation": "log1p(relu(x))", "mask": "attention_mask", "pooling": "max over tokens"}


def _mlm(encoder: Encoder):
    """The masked-LM network of a plain SPLADE encoder (its first module's ``auto_model``)."""
    modules = list(encoder.model)
    network = getattr(modules[0], "auto_model", None) if modules else None
    if encoder.architecture != "splade" or network is None or not hasattr(network, "get_output_embeddings"):
        raise SparsefitError(f"only plain SPLADE models export to ONNX; {encoder.name} is {encoder.architecture!r}",
                             hint="export it with --format sentence-transformers")
    return network


def require_onnx() -> None:
    """Both ONNX packages, or a clear error before any work (torch's exporter needs ``onnx``; the check needs
    ``onnxruntime``)."""
    import importlib.util

    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise SparsefitError(f"ONNX export needs {' and '.join(missing)}, which is not installed",
                             hint="pip install 'sparsefit[onnx]'")


def export_onnx(encoder: Encoder, output: str | Path, *, check: Callable[[Path], None] | None = None) -> Path:
    """Write ``model.onnx`` (logits, dynamic batch and length), the tokenizer and ``sparsefit_onnx.json`` to
    ``output``; ``check(folder)`` runs on the written folder before it takes ``output``'s place, and what it
    raises leaves ``output`` as it was. The folder appears complete (and checked) or not at all."""
    import torch

    require_onnx()
    from sparsefit.files import atomic_folder
    from sparsefit.progress import quiet_libraries

    network = _mlm(encoder)
    network = network.to("cpu").eval()
    config = network.config
    takes_types = getattr(config, "type_vocab_size", 0) > 0 and "token_type_ids" in encoder.tokenizer.model_input_names
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_types else [])

    class Logits(torch.nn.Module):  # positional inputs in `names` order, one output: the logits
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.network(**dict(zip(names, inputs)), return_dict=True).logits

    sample = encoder.tokenizer(["a cordless drill", "paint"], padding=True, return_tensors="pt")
    args = tuple(sample[name] for name in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"logits": {0: "batch", 1: "tokens"}}
    target = Path(output)
    with atomic_folder(target) as temporary, quiet_libraries(), torch.inference_mode(False), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on BERT's Python branches (checked below instead)
        torch.onnx.export(Logits(), args, str(temporary / "model.onnx"), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        encoder.tokenizer.save_pretrained(str(temporary))
        config.save_pretrained(str(temporary))
        (temporary / "sparsefit_onnx.json").write_text(json.dumps({
            "source": encoder.name, "inputs": names, "output": POOLING, "vocab_size": int(config.vocab_size),
            "max_seq_length": getattr(encoder.model, "max_seq_length", None), "opset": OPSET,
        }, indent=2))
        if check is not None:
            check(temporary)
    return target


def onnx_vectors(folder: str | Path, texts: Sequence[str], *, batch_size: int = 64, max_length: int | None = None) -> sp.csr_matrix:
    """Sparse vectors of ``texts`` from an exported folder with onnxruntime, pooled as its consumers pool them."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise SparsefitError("onnxruntime is not installed", hint="pip install 'sparsefit[onnx]'") from exc
    from transformers import AutoTokenizer

    folder = Path(folder)
    meta = json.loads((folder / "sparsefit_onnx.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    options = ort.SessionOptions()
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    length = max_length or meta.get("max_seq_length") or 512
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=length,
                          return_tensors="np")
        feed = {name: batch[name].astype(np.int64) for name in meta["inputs"]}
        logits = session.run(["logits"], feed)[0]
        pooled = (np.log1p(np.maximum(logits, 0)) * batch["attention_mask"][..., None]).max(axis=1)
        rows.append(sp.csr_matrix(pooled.astype(np.float32)))
    return sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, int(meta["vocab_size"])), dtype=np.float32)


def export_sentence_transformers(model_folder: str | Path, output: str | Path) -> Path:
    """Copy a run's ``model/`` (already a sentence-transformers SparseEncoder folder) to ``output``, atomically."""
    from sparsefit.files import atomic_folder

    source, target = Path(model_folder), Path(output)
    with atomic_folder(target) as temporary:
        shutil.copytree(source, temporary, dirs_exist_ok=True)
    return target
