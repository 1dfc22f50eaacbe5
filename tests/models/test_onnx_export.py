"""ONNX export: the masked-LM logits that fastembed and sentence-transformers' ONNX backend load, giving the
PyTorch vectors back (max |Δ| ≤ 1e-4) when pooled as they pool them, checked with onnxruntime."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sparsefit.errors import SparsefitError
from sparsefit.models.onnx_export import export_onnx, onnx_vectors
from tests.conftest import EXAMPLES


pytestmark = pytest.mark.slow  # exports (traces) a model to ONNX and checks it with onnxruntime


def _catalog_texts() -> list[str]:
    with open(EXAMPLES / "catalog.csv", newline="", encoding="utf-8") as f:
        return [f"{row['title']} {row['description']}" for row in csv.DictReader(f)]


def test_splade_tiny_as_onnx_gives_the_pytorch_vectors_on_the_demo_catalog(splade_tiny, tmp_path):
    folder = export_onnx(splade_tiny, tmp_path / "onnx")
    meta = json.loads((folder / "sparsefit_onnx.json").read_text())
    assert meta["inputs"] == ["input_ids", "attention_mask", "token_type_ids"] and meta["vocab_size"] == 30522
    assert {"model.onnx", "tokenizer.json", "config.json"} <= {p.name for p in folder.iterdir()}
    texts = _catalog_texts()[:200]
    want = splade_tiny.encode_documents(texts).toarray()
    got = onnx_vectors(folder, texts).toarray()
    assert got.shape == want.shape
    assert np.abs(want - got).max() <= 1e-4
    # the same active terms (not just small numbers): a term may flip only where a logit is within rounding of 0
    differ = ((want > 0) != (got > 0)).sum()
    assert differ <= 0.001 * (want > 0).sum(), (differ, (want > 0).sum())


def test_an_inference_free_model_is_refused_with_a_clear_error(splade_tiny_inference_free, tmp_path):
    with pytest.raises(SparsefitError, match="only plain SPLADE models export to ONNX"):
        export_onnx(splade_tiny_inference_free, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


@pytest.mark.slow
def test_onnx_matches_pytorch_on_1000_home_depot_titles(splade_tiny, homedepot, tmp_path):
    with open(homedepot / "products.csv", newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        title = next(c for c in reader.fieldnames if "title" in c.lower())
        texts = [row[title] for _, row in zip(range(1000), reader)]
    folder = export_onnx(splade_tiny, tmp_path / "onnx")
    delta = np.abs(splade_tiny.encode_documents(texts).toarray() - onnx_vectors(folder, texts).toarray()).max()
    assert delta <= 1e-4, delta


def test_an_export_that_fails_its_check_leaves_the_earlier_one(splade_tiny, tmp_path):
    folder = export_onnx(splade_tiny, tmp_path / "onnx")
    (folder / "earlier").write_text("the export that was there")

    def differs(written):
        assert (written / "model.onnx").is_file()  # the check sees the new export before it takes the place
        raise SparsefitError("the vectors differ")

    with pytest.raises(SparsefitError, match="the vectors differ"):
        export_onnx(splade_tiny, folder, check=differs)
    assert (folder / "earlier").read_text() == "the export that was there"
    assert not [p for p in tmp_path.iterdir() if p.name != "onnx"]  # no temporary folder left behind
