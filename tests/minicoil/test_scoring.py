"""miniCOIL's scores: senses separate, words without a layer score exactly BM25, both Qdrant engines agree.

Expected values come from formulas written out here (BM25's term frequency, Qdrant's IDF, MurmurHash3's
published value for b"foo"), never from the code under test.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.index import open_index
from tests.minicoil.conftest import FRUIT, PHONE, sense_texts, synthetic_catalog

K, B = 1.2, 0.75


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())  # the synthetic catalog has no stopwords and no punctuation


def bm25_tf(count: int, length: int, avg_len: float) -> float:
    return count * (K + 1) / (count + K * (1 - B + B * length / avg_len))


def qdrant_idf(n_docs: int, containing: int) -> float:
    return math.log(1 + (n_docs - containing + 0.5) / (containing + 0.5))


def columns(matrix: sp.csr_matrix, wanted: list[int] | np.ndarray) -> np.ndarray:
    """Dense ``matrix[:, wanted]`` without scipy's column indexing (it allocates per column: 2**31 here)."""
    coo = matrix.tocoo()
    position = {int(c): i for i, c in enumerate(wanted)}
    out = np.zeros((matrix.shape[0], len(wanted)))
    for r, c, v in zip(coo.row, coo.col, coo.data):
        if int(c) in position:
            out[r, position[int(c)]] += v
    return out


def catalog_avg_len() -> float:
    texts = synthetic_catalog()
    return sum(len(words_of(t)) for t in texts) / len(texts)


def test_two_senses_of_a_word_score_apart(trained) -> None:
    fruit, phone = sense_texts(FRUIT, 15, 101), sense_texts(PHONE, 15, 102)  # titles never trained on
    apple = trained.word_ids["appl"]
    part = [apple * 4 + k for k in range(4)]  # only apple's part of the score
    queries = columns(trained.encode_queries(fruit + phone), part)
    documents = columns(trained.encode_documents(fruit + phone), part)
    scores = queries @ documents.T
    sense = np.array([0] * 15 + [1] * 15)
    same = sense[:, None] == sense[None, :]
    np.fill_diagonal(same, False)
    cross = sense[:, None] != sense[None, :]
    assert scores[same].mean() > scores[cross].mean() + 0.4
    for q in range(30):  # every query prefers the products that use "apple" its way
        assert scores[q, same[q]].mean() > scores[q, cross[q]].mean()
    assert np.mean(scores[same][:, None] > scores[cross][None, :]) > 0.95


def test_a_word_without_a_layer_scores_exactly_bm25(trained, tmp_path) -> None:
    texts = synthetic_catalog()
    assert "zebra" not in trained.word_ids  # in 2 products: fewer than min_contexts
    with open_index(path=tmp_path / "edge", modifier=trained.modifier) as index:
        index.upsert([str(i) for i in range(len(texts))], trained.encode_documents(texts))
        hits = index.search(trained.encode_queries(["zebra"]), limit=5)
    avg_len, idf = catalog_avg_len(), qdrant_idf(len(texts), 2)
    expected = {str(texts.index("zebra zebra towel")): idf * bm25_tf(2, 3, avg_len),
                str(texts.index("zebra lamp desk")): idf * bm25_tf(1, 3, avg_len)}
    assert [h.product_id for h in hits] == list(expected)
    np.testing.assert_allclose([h.score for h in hits], list(expected.values()), rtol=1e-5)


def test_document_and_query_layout_is_the_documented_one(trained) -> None:
    vocabulary = len(trained.stems)
    shift = ((vocabulary + 1) * 4 // 32000 + 2) * 32000
    foo = shift + abs(-156908512) % (2**31 - 1 - shift)  # mmh3.hash("foo") == -156908512 (mmh3's README)
    shelf = trained.word_ids["shelf"]
    document = trained.encode_documents(["foo shelf"])
    assert document.shape == (1, 2**31 - 1)
    entries = dict(zip(document.indices.tolist(), document.data.tolist()))
    assert sorted(entries) == [shelf * 4 + k for k in range(4)] + [foo]
    tf = bm25_tf(1, 2, catalog_avg_len())
    assert entries[foo] == pytest.approx(tf, rel=1e-6)
    assert np.linalg.norm([entries[shelf * 4 + k] for k in range(4)]) == pytest.approx(tf, rel=1e-5)

    query = trained.encode_queries(["foo shelf shelf"])  # a query counts a word once
    entries = dict(zip(query.indices.tolist(), query.data.tolist()))
    assert sorted(entries) == [shelf * 4 + k for k in range(4)] + [foo]
    assert entries[foo] == 1.0
    assert np.linalg.norm([entries[shelf * 4 + k] for k in range(4)]) == pytest.approx(1.0, rel=1e-5)
    assert trained.modifier == "idf"


def test_an_index_of_minicoil_vectors_has_the_idf_modifier_and_scores_as_written(trained, tmp_path) -> None:
    texts = synthetic_catalog()
    documents = trained.encode_documents(texts)
    query = trained.encode_queries(["apple iphone charger"])
    shared = columns(documents, query.indices)
    containing = (shared != 0).sum(axis=0)
    idf = np.log(1 + (len(texts) - containing + 0.5) / (containing + 0.5))
    reference = shared @ (query.data * idf)
    with open_index(path=tmp_path / "edge", modifier="idf") as index:
        index.upsert([str(i) for i in range(len(texts))], documents)
        assert index.modifier == "idf"
        hits = index.search(query, limit=10)
    np.testing.assert_allclose([h.score for h in hits], np.sort(reference)[::-1][:10], rtol=1e-5, atol=1e-6)


def test_qdrant_edge_and_local_client_agree_on_a_minicoil_index(trained, tmp_path) -> None:
    texts = synthetic_catalog()
    documents = trained.encode_documents(texts)
    queries = trained.encode_queries(sense_texts(FRUIT, 4, 7) + sense_texts(PHONE, 4, 8)
                                     + ["zebra", "apple", "garden hose ladder", "foo"])
    results = {}
    for engine, where in (("edge", {"path": tmp_path / "edge"}), ("client", {"local_client": True})):
        with open_index(modifier="idf", **where) as index:
            index.upsert([str(i) for i in range(len(texts))], documents)
            results[engine] = index.search_batch(queries, limit=10)
    for edge, client in zip(results["edge"], results["client"]):
        assert len(edge) == len(client) > 0
        np.testing.assert_allclose([h.score for h in edge], [h.score for h in client], rtol=1e-5, atol=1e-6)
        distinct = {round(h.score, 4) for h in edge}
        if len(distinct) == len(edge):  # where scores tie, the engines may order the tied products differently
            assert [h.product_id for h in edge] == [h.product_id for h in client]


def test_explain_gives_each_shared_word_its_part(trained) -> None:
    texts = synthetic_catalog()
    shared = {w.stem: w for w in trained.explain("zebra towel", "zebra zebra towel")}
    assert set(shared) == {"zebra", "towel"}
    zebra = shared["zebra"]
    assert not zebra.has_layer and zebra.similarity == 1.0
    assert zebra.tf == pytest.approx(bm25_tf(2, 3, catalog_avg_len()), rel=1e-5)
    assert zebra.idf == pytest.approx(qdrant_idf(len(texts), 2), rel=1e-5)
    assert zebra.score == pytest.approx(zebra.tf * zebra.idf, rel=1e-5)
    assert shared["towel"].has_layer and -1.0 <= shared["towel"].similarity <= 1.0
    assert trained.explain("garden hose", "zebra lamp desk") == []


def test_decode_names_words_with_their_weights(trained) -> None:
    row = trained.encode_documents(["zebra zebra towel"])[0]
    decoded = dict(trained.decode(row))
    assert set(decoded) == {"zebra", "towel"}
    assert decoded["zebra"] == pytest.approx(bm25_tf(2, 3, catalog_avg_len()), rel=1e-5)
    assert decoded["towel"] == pytest.approx(bm25_tf(1, 3, catalog_avg_len()), rel=1e-5)
    shelf = trained.word_ids["shelf"]
    assert trained.vocab[shelf * 4 + 2] == "shelf#2"
    assert trained.vocab[row.indices[-1]] == "zebra"  # the hashed index, named from the training catalog


def test_encoding_is_batch_independent_and_reports_progress(trained) -> None:
    texts = synthetic_catalog()[:50]
    seen: list[int] = []
    whole = trained.encode_documents(texts, batch_size=7, progress=seen.append)
    single = sp.vstack([trained.encode_documents([t]) for t in texts[:5]], format="csr")
    assert sum(seen) == len(texts)
    np.testing.assert_allclose((whole[:5] - single).data, 0, atol=1e-5)
    assert (whole[:5].indices == single.indices).all()
    assert trained.encode_queries([]).shape == (0, trained.vocab_size)
    assert trained.encode_documents(["the of and"]).nnz == 0  # stopwords only
