"""A miniCOIL model folder round-trips, the contexts cache is reused, bad input is a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparsefit.errors import SparsefitError
from sparsefit.minicoil import (
    Analyzer,
    FitSettings,
    is_minicoil,
    load_minicoil,
    train_minicoil,
)
from sparsefit.minicoil.contexts import TokenEmbedder
from tests.minicoil.conftest import synthetic_catalog


def test_saved_model_loads_and_encodes_the_same(trained, tmp_path) -> None:
    folder = trained.save(tmp_path / "model")
    assert is_minicoil(folder) and not is_minicoil(tmp_path)
    loaded = load_minicoil(folder)
    texts = synthetic_catalog()[::7] + ["zebra foo apple"]
    for encode in ("encode_documents", "encode_queries"):
        a, b = getattr(trained, encode)(texts), getattr(loaded, encode)(texts)
        assert (a.indices == b.indices).all() and (a.indptr == b.indptr).all()
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
    assert loaded.fingerprint() == trained.fingerprint()
    assert loaded.stems == trained.stems and loaded.analyzer == trained.analyzer


def test_the_folder_holds_fastembeds_files(trained, tmp_path) -> None:
    folder = trained.save(tmp_path / "model")
    weights = np.load(folder / "minicoil.triplet.model.npy")
    assert weights.shape == (len(trained.stems) + 1, trained.hidden_size, 4)
    assert not weights[0].any()  # fastembed's id 0 is the unknown word
    vocab = json.loads((folder / "minicoil.triplet.model.vocab").read_text())
    assert len(vocab["vocab"]) == len(trained.stems)
    assert vocab["stem_mapping"]["appl"] == "apple"
    assert "the" in (folder / "stopwords.txt").read_text().split()


def test_a_damaged_or_foreign_folder_is_a_clear_error(trained, tmp_path) -> None:
    with pytest.raises(SparsefitError, match="not a miniCOIL model folder"):
        load_minicoil(tmp_path)
    folder = trained.save(tmp_path / "model")
    (folder / "minicoil.triplet.model.npy").write_bytes(b"not numpy")
    with pytest.raises(SparsefitError, match="damaged"):
        load_minicoil(folder)


def test_second_training_reads_the_cached_contexts(tiny_sentence_model, tmp_path, monkeypatch) -> None:
    texts = synthetic_catalog()
    settings = {"encoder": str(tiny_sentence_model), "sentence_model": str(tiny_sentence_model), "min_contexts": 5,
                    "max_contexts": 30, "cache_dir": tmp_path / "cache"}
    first = train_minicoil(texts, **settings)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_model(*args, **kwargs):
        raise AssertionError("the contexts were embedded again")

    monkeypatch.setattr(TokenEmbedder, "load", no_model)
    again = train_minicoil(texts, **settings)
    np.testing.assert_array_equal(first.weights, again.weights)
    refit = train_minicoil(texts, **settings, fit=FitSettings(steps=3), dims=2)  # fitting settings: same contexts
    assert refit.weights.shape[2] == 2


def test_progress_reports_both_stages(tiny_sentence_model) -> None:
    seen: list[tuple[str, int, int]] = []
    model = train_minicoil(synthetic_catalog(), encoder=str(tiny_sentence_model), sentence_model=str(tiny_sentence_model),
                           min_contexts=5, progress=lambda *a: seen.append(a))
    assert {stage for stage, _, _ in seen} == {"embed", "fit"}
    assert seen[-1] == ("fit", len(model.stems), len(model.stems))


@pytest.mark.parametrize("kwargs, message", [
    ({"min_contexts": 1}, "min_contexts"),
    ({"min_contexts": 20, "max_contexts": 10}, "min_contexts"),
    ({"dims": 0}, "dims"),
    ({"b": 2.0}, "BM25"),
])
def test_bad_settings_are_clear_errors(kwargs, message) -> None:
    with pytest.raises(SparsefitError, match=message):
        train_minicoil(["a title"], **kwargs)


def test_no_texts_and_unknown_language_are_clear_errors() -> None:
    with pytest.raises(SparsefitError, match="no texts"):
        train_minicoil([])
    with pytest.raises(SparsefitError, match="Snowball"):
        Analyzer(language="klingon")


def test_a_catalog_too_small_for_any_layer_is_plain_bm25(tiny_sentence_model) -> None:
    model = train_minicoil(["zebra lamp", "garden hose"], encoder=str(tiny_sentence_model),
                           sentence_model=str(tiny_sentence_model), min_contexts=5)
    assert model.stems == []
    row = model.encode_documents(["zebra lamp"])
    assert row.nnz == 2  # one exact-match index per word
