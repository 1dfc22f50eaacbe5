"""--device: what each value resolves to here (a CPU-only machine), and the training arithmetic per device."""

from __future__ import annotations

import pytest
import torch

import sparsefit.devices as devices
from sparsefit.devices import pin_cuda_device, resolve_device, training_precision
from sparsefit.errors import SparsefitError


def test_auto_and_cpu_resolve_to_the_cpu_without_a_gpu():
    assert not torch.cuda.is_available()  # this machine; the GPU check covers the other case
    assert resolve_device("auto") == resolve_device(None) == resolve_device(" CPU ") == "cpu"


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_asking_for_a_gpu_that_is_not_there_is_one_clear_error(spec):
    with pytest.raises(SparsefitError) as error:
        resolve_device(spec)
    assert f"--device {spec}: no CUDA GPU is available here" in str(error.value)
    assert "\n" not in str(error.value) and "--device cpu" in str(error.value)


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cpu:0", ""])
def test_a_malformed_device_names_the_choices(spec):
    if spec == "":
        assert resolve_device(spec) == "cpu"  # empty means the default, auto
        return
    with pytest.raises(SparsefitError, match="unknown device .* use one of auto, cpu, cuda, cuda:N or mps"):
        resolve_device(spec)


def test_a_missing_gpu_number_names_the_gpus_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(SparsefitError, match="has 2 CUDA GPU.*cuda:0 … cuda:1"):
        resolve_device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "1")  # torchrun: each process takes the GPU of its local rank
    assert resolve_device("cuda") == "cuda:1"


def test_cuda_trains_in_mixed_precision_bfloat16_where_the_gpu_has_it(monkeypatch):
    for supported, expected in ((True, "bfloat16"), (False, "float16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert training_precision("auto", "cuda:0", hidden_size=128) == expected
    assert training_precision("float32", "cuda", hidden_size=128) == "float32"  # asked for: kept
    monkeypatch.setattr(devices, "bfloat16_is_fast", lambda: False)
    assert training_precision("auto", "cpu", hidden_size=384) == "float32"
    assert training_precision("auto", "mps", hidden_size=384) == "float32"
    with pytest.raises(SparsefitError, match="float16 training needs a CUDA GPU"):
        training_precision("float16", "cpu", hidden_size=128)


def test_one_gpu_by_number_is_pinned_before_cuda_starts(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # recorded, so the variable is removed again after the test
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert pin_cuda_device("cuda:3") == "cuda:0"
    assert devices.os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert pin_cuda_device("cuda:1") == "cuda:1"  # already pinned: left as the user set it
    assert pin_cuda_device("auto") == "auto" and pin_cuda_device(None) is None
