"""miniCOIL with the real offline minilm-l6 in both roles, on the demo catalog (slow tier: ~20 s of CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsefit.data import load_catalog
from sparsefit.index import open_index
from sparsefit.minicoil import load_minicoil, train_minicoil
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow


def test_minilm_minicoil_on_the_demo_catalog(tmp_path) -> None:
    catalog = load_catalog(EXAMPLES / "catalog.csv")
    model = train_minicoil(catalog.texts, min_contexts=5, cache_dir=tmp_path / "cache")
    assert model.hidden_size == 384 and len(model.stems) > 100
    model = load_minicoil(model.save(tmp_path / "model"))
    documents = model.encode_documents(catalog.texts)
    query = model.encode_queries(["cordless drill"])
    drill = model.word_ids["drill"]
    in_docs = model.analyse(catalog.texts, query=False)
    in_query = model.analyse(["cordless drill"], query=True)
    agreement = in_query.meanings[in_query.ids == drill] @ in_docs.meanings[in_docs.ids == drill].T
    assert agreement.mean() > 0.5  # one sense of "drill" in a tool catalog: query and products mostly agree
    with open_index(path=tmp_path / "index", modifier=model.modifier) as index:
        index.upsert(catalog.ids, documents)
        top = index.search(query, limit=5)
    texts = dict(zip(catalog.ids, catalog.texts))
    assert all({"cordless", "drill"} <= set(texts[h.product_id].lower().replace("/", " ").split()) for h in top[:3])
    assert np.isfinite([h.score for h in top]).all()
