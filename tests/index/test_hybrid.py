"""Qdrant's BM25 as a named vector, and hybrid queries fused in the engine: the same on every engine.

Engines: Qdrant Edge, qdrant-client local mode and, when SPARSEFIT_TEST_QDRANT_URL is set, a server.
The learned leg is the synthetic SPLADE-like corpus of test_index.py; the BM25 leg is the demo
catalog's texts through Qdrant's BM25.
"""

from __future__ import annotations

import csv
from functools import lru_cache

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.index import Bm25Model, Fusion, SparseIndex
from tests.conftest import EXAMPLES
from tests.index.test_index import FILTERS, SERVER_URL, assert_same, corpus, make_index, queries  # noqa: F401

ENGINES = ["edge", "client-local", "server"]


@lru_cache(maxsize=None)
def demo() -> tuple[list[str], list[str], list[dict], sp.csr_matrix, Bm25Model]:
    """The demo catalog: ids, texts (title + description), payloads, the learned vectors (synthetic), BM25 model."""
    with (EXAMPLES / "catalog.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    ids = [r["sku"] for r in rows]
    rng = np.random.default_rng(3)  # a few filler words each: lengths vary, so fewer BM25 scores tie
    fillers = [f"filler{i}" for i in range(30)]
    texts = [f"{r['title']}. {r['description']} {' '.join(rng.choice(fillers, int(rng.integers(0, 25))))}" for r in rows]
    _, learned, payloads = corpus()
    return ids, texts, list(payloads[: len(ids)]), learned[: len(ids)], Bm25Model.fit(texts)


def query_texts() -> list[str]:
    with (EXAMPLES / "judged_queries.csv").open(encoding="utf-8") as handle:
        return sorted({r["query"] for r in csv.DictReader(handle)})[:40]


def filled(make_index, engine: str) -> SparseIndex:
    ids, texts, payloads, learned, model = demo()
    idx = make_index(engine, bm25=True)
    idx.upsert(ids, learned, payloads, bm25=model.documents(texts), batch_size=64)
    return idx


def workload(idx: SparseIndex, fusion: Fusion | None, *, learned: bool = True, bm25: bool = True, limit: int = 10) -> list:
    _, _, _, _, model = demo()
    texts = query_texts()
    per_row = [FILTERS[i % len(FILTERS)] for i in range(len(texts))]
    return idx.search_batch(queries(len(texts)) if learned else None, limit=limit, filters=per_row, with_payload=True,
                            bm25=model.queries(texts) if bm25 else None, fusion=fusion)


def tie_free(idx: SparseIndex) -> list[int]:
    """The workload's queries whose learned and BM25 legs each rank their top 100 without a tied score."""
    legs = [workload(idx, None, bm25=False, limit=100), workload(idx, None, learned=False, limit=100)]
    return [i for i in range(len(legs[0])) if all(len({h.score for h in leg[i]}) == len(leg[i]) for leg in legs)]


FUSIONS = [  # dbsf and formula prefetch more than the catalog's 400: no leg's cut-off falls inside a tie
    Fusion("rrf", (0.7, 0.3)),
    Fusion("rrf", (0.2, 0.8), k=60),
    Fusion("dbsf", prefetch=500),
    Fusion("formula", (0.6, 0.4), scales=(3.0, 5.0), prefetch=500),
]


@pytest.mark.parametrize("fusion", FUSIONS, ids=lambda f: f.describe())
def test_hybrid_queries_rank_the_same_on_every_engine(make_index, fusion: Fusion) -> None:
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    indexes = {engine: filled(make_index, engine) for engine in engines}
    runs = {engine: workload(idx, fusion) for engine, idx in indexes.items()}
    assert sum(len(hits) for hits in runs["edge"]) > 200  # the workload finds things: the comparison means something
    compared = range(len(runs["edge"]))
    if fusion.method == "rrf":  # ranks, not scores: engines order a leg's tied products differently, so
        compared = tie_free(indexes["edge"])  # compare the queries whose legs have no tie among their prefetch
        assert len(compared) >= 10
    for engine, results in runs.items():
        for i, (a, b) in enumerate(zip(runs["edge"], results)):
            if i not in compared:
                continue
            assert_same(b, [(h.product_id, h.score) for h in a], f"{fusion.describe()}: edge vs {engine}, query {i}")
            assert [h.payload for h in a] == [h.payload for h in b]


def test_bm25_alone_ranks_the_same_on_every_engine(make_index) -> None:
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    runs = {engine: workload(filled(make_index, engine), None, learned=False) for engine in engines}
    assert sum(len(hits) for hits in runs["edge"]) > 100
    for engine, results in runs.items():
        for i, (a, b) in enumerate(zip(runs["edge"], results)):
            assert_same(b, [(h.product_id, h.score) for h in a], f"bm25: edge vs {engine}, query {i}")


@pytest.mark.parametrize("engine", ["edge", "client-local"])
def test_a_leg_weighted_zero_leaves_the_other_legs_ranking(make_index, engine: str) -> None:
    idx = filled(make_index, engine)
    learned_only = workload(idx, None, bm25=False)
    bm25_only = workload(idx, None, learned=False)
    fused_learned = workload(idx, Fusion("rrf", (1.0, 0.0)))
    fused_bm25 = workload(idx, Fusion("rrf", (0.0, 1.0)))
    for i in tie_free(idx):  # a tie within a leg: the engine's order, not sparsefit's (score, id)
        # what only the weight-0 leg found follows with score 0
        assert [h.product_id for h in fused_learned[i] if h.score > 0] == [h.product_id for h in learned_only[i]], i
        assert [h.product_id for h in fused_bm25[i] if h.score > 0] == [h.product_id for h in bm25_only[i]], i


@pytest.mark.parametrize("engine", ["edge", "client-local"])
def test_rrf_scores_are_qdrants_weighted_reciprocal_ranks(make_index, engine: str) -> None:
    idx = filled(make_index, engine)
    texts = query_texts()
    learned = idx.search_batch(queries(len(texts)), limit=20)
    lexical = idx.search_batch(None, limit=20, bm25=demo()[4].queries(texts))
    fused = idx.search_batch(queries(len(texts)), limit=10, bm25=demo()[4].queries(texts),
                             fusion=Fusion("rrf", (0.7, 0.3), k=2, prefetch=20))
    checked = 0
    for i in range(len(texts)):
        if any(len({h.score for h in leg[i]}) < len(leg[i]) for leg in (learned, lexical)):
            continue  # a tie within a leg: its ranks are the engine's order
        checked += 1
        rank_a = {h.product_id: r for r, h in enumerate(learned[i])}
        rank_b = {h.product_id: r for r, h in enumerate(lexical[i])}
        for hit in fused[i]:  # Qdrant's weighted RRF by hand: Σ 1 / ((rank + 1) / weight + k - 1), rank from 0
            expected = sum(1 / ((ranks[hit.product_id] + 1) / w + 2 - 1) for w, ranks in ((0.7, rank_a), (0.3, rank_b))
                           if hit.product_id in ranks)
            assert hit.score == pytest.approx(expected, rel=1e-5), (i, hit)
    assert checked >= 5


@pytest.mark.parametrize("engine", ["edge", "client-local"])
def test_an_empty_leg_leaves_the_others(make_index, engine: str) -> None:
    idx = filled(make_index, engine)
    model = demo()[4]
    stopwords = model.queries(["the of and"])
    assert stopwords.nnz == 0
    first, nothing = queries(5)[:1], queries(5)[3:4]  # a query, and the all-zero one
    hybrid = idx.search(first, limit=10, bm25=stopwords, fusion=Fusion("rrf", (0.5, 0.5)))
    alone = idx.search(first, limit=10)
    assert [h.product_id for h in hybrid] == [h.product_id for h in alone] and len(hybrid) == 10
    assert nothing.nnz == 0
    assert idx.search(nothing, limit=10, bm25=stopwords, fusion=Fusion()) == []


def test_bm25_needs_an_index_built_with_it(make_index) -> None:
    ids, _, _, learned, model = demo()
    idx = make_index("edge")
    idx.upsert(ids, learned)
    assert not idx.has_bm25
    with pytest.raises(SparsefitError, match="no BM25 vectors"):
        idx.search(None, bm25=model.queries(["drill"]))
    with pytest.raises(SparsefitError, match="no BM25 vectors"):
        idx.upsert(ids[:1], learned[:1], bm25=model.documents(["drill"]))


def test_hybrid_input_errors(make_index) -> None:
    idx = filled(make_index, "edge")
    model = demo()[4]
    with pytest.raises(SparsefitError, match="no query vectors"):
        idx.search_batch(None)
    with pytest.raises(SparsefitError, match="2 rows but 1 BM25 rows"):
        idx.search_batch(queries(2), bm25=model.queries(["drill"]))
    with pytest.raises(SparsefitError, match="3 weights for 2 legs"):
        idx.search_batch(queries(3)[:1], bm25=model.queries(["drill"]), fusion=Fusion("rrf", (1, 1, 1)))
    with pytest.raises(SparsefitError, match="unknown fusion"):
        Fusion("max")
    with pytest.raises(SparsefitError, match="not all 0"):
        Fusion("rrf", (0.0, 0.0))
    with pytest.raises(SparsefitError, match="non-negative"):
        Fusion("rrf", (-1.0, 2.0))


def test_bm25_model_measures_the_catalogs_length_and_round_trips() -> None:
    model = Bm25Model.fit(["cordless drill drill", "garden hose", "the and of"])  # stopwords are not counted
    assert model.avg_len == pytest.approx((3 + 2 + 0) / 3, abs=1e-3)
    assert Bm25Model.from_json(model.to_json()) == model
    assert Bm25Model.from_json(None) == Bm25Model()
    with pytest.raises(SparsefitError, match="damaged"):
        Bm25Model.from_json({"k": "x"})
    with pytest.raises(SparsefitError, match="out of range"):
        Bm25Model(b=2.0)
    docs = model.documents(["drill drill drills"])  # one stemmed token, tf 3: 3·2.5 / (3 + 1.5·(0.25 + 0.75·3/1.667))
    expected = 3 * 2.5 / (3 + 1.5 * (0.25 + 0.75 * 3 / model.avg_len))
    assert docs.nnz == 1 and docs.data[0] == pytest.approx(expected, rel=1e-5)
    assert np.array_equal(model.queries(["Drill drills"]).data, [1.0])


# --------------------------------------------------------------------------- relevance feedback


def feedback_workload(idx: SparseIndex, strategy, *, hybrid: bool) -> list:
    """Per query: click the 5th hit of the plain search (score 1), skip the 1st (score 0), and search again."""
    texts = query_texts()[:20]
    model = demo()[4]
    plain = idx.search_batch(queries(len(texts)), limit=10)
    feedback = [[(hits[4].product_id, 1.0), (hits[0].product_id, 0.0)] if len(hits) >= 5 else None for hits in plain]
    return idx.search_batch(queries(len(texts)), limit=10, with_payload=True, feedback=feedback, strategy=strategy,
                            bm25=model.queries(texts) if hybrid else None, fusion=Fusion("dbsf", prefetch=500) if hybrid else None)


def test_feedback_scores_are_qdrants_naive_strategy(make_index) -> None:
    """Edge against the strategy written out by hand over the plain query's top ``depth`` candidates:
    a·q·x + Σ over (clicked, skipped) pairs c·(1 − 0)^b·(clicked·x − skipped·x)."""
    from sparsefit.index import FeedbackStrategy

    ids, _, _, learned, _ = demo()
    idx = filled(make_index, "edge")
    strategy = FeedbackStrategy(a=0.8, b=1.0, c=0.05, depth=50)
    results = feedback_workload(idx, strategy, hybrid=False)
    plain = idx.search_batch(queries(20), limit=50)
    position = {pid: i for i, pid in enumerate(ids)}
    checked = 0
    for i, hits in enumerate(results):
        if len(plain[i]) < 50:
            continue
        q = queries(20)[i]
        clicked, skipped = learned[position[plain[i][4].product_id]], learned[position[plain[i][0].product_id]]
        expected = {h.product_id: strategy.a * (q @ learned[position[h.product_id]].T).toarray()[0, 0]
                    + strategy.c * ((clicked - skipped) @ learned[position[h.product_id]].T).toarray()[0, 0]
                    for h in plain[i]}
        best = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:10]
        assert_same(hits, best, f"query {i}")
        checked += 1
    assert checked >= 10


def test_local_mode_has_no_sparse_feedback_and_says_so(make_index) -> None:
    idx = filled(make_index, "client-local")
    q = queries(5)[:1]
    hit = idx.search(q, limit=2)
    with pytest.raises(SparsefitError, match="local mode has no relevance feedback"):
        idx.search(q, feedback=[(hit[0].product_id, 1.0), (hit[1].product_id, 0.0)])


@pytest.mark.skipif(not SERVER_URL, reason="set SPARSEFIT_TEST_QDRANT_URL to test a real Qdrant server")
@pytest.mark.parametrize("hybrid", [False, True], ids=["sparse", "hybrid"])
def test_feedback_queries_rank_the_same_on_edge_and_a_server(make_index, hybrid: bool) -> None:
    from sparsefit.index import FeedbackStrategy

    strategy = FeedbackStrategy(a=1.0, b=1.0, c=0.05, depth=50)
    runs = {engine: feedback_workload(filled(make_index, engine), strategy, hybrid=hybrid) for engine in ("edge", "server")}
    for i, (a, b) in enumerate(zip(runs["edge"], runs["server"])):
        assert_same(b, [(h.product_id, h.score) for h in a], f"feedback: edge vs server, query {i}")


@pytest.mark.parametrize("engine", ["edge"])
def test_feedback_pulls_the_clicked_product_up_and_pushes_the_skipped_one_down(make_index, engine: str) -> None:
    from sparsefit.index import FeedbackStrategy

    idx = filled(make_index, engine)
    q = queries(5)[:1]
    plain = idx.search(q, limit=10)
    clicked, skipped = plain[6].product_id, plain[0].product_id
    after = idx.search(q, limit=10, feedback=[(clicked, 1.0), (skipped, 0.0)], strategy=FeedbackStrategy(c=1.0))
    ranks = [h.product_id for h in after]
    assert ranks[0] == clicked  # sim(clicked, clicked) dominates: it leads
    assert skipped not in ranks[:3]


@pytest.mark.parametrize("engine", ["edge"])
def test_feedback_without_a_pair_is_the_plain_query(make_index, engine: str) -> None:
    from sparsefit.index import FeedbackStrategy

    idx = filled(make_index, engine)
    q = queries(5)[:1]
    plain = idx.search(q, limit=10)
    for feedback in ([], [(plain[3].product_id, 1.0)], [(plain[3].product_id, 1.0), (plain[5].product_id, 1.0)]):
        again = idx.search(q, limit=10, feedback=feedback, strategy=FeedbackStrategy(a=1.0, c=0.5))
        assert_same(again, [(h.product_id, h.score) for h in plain], f"feedback {feedback}")


def test_feedback_input_errors(make_index) -> None:
    idx = filled(make_index, "edge")
    q = queries(5)[:1]
    with pytest.raises(SparsefitError, match="not in the index: NOPE"):
        idx.search(q, feedback=[("NOPE", 1.0)])
    with pytest.raises(SparsefitError, match="must be a number"):
        idx.search(q, feedback=[(demo()[0][0], "yes")])
    with pytest.raises(SparsefitError, match="product id and a score"):
        idx.search(q, feedback=["PT-0005"])
    with pytest.raises(SparsefitError, match="needs the model's vectors"):
        idx.search(None, bm25=demo()[4].queries(["drill"]), feedback=[(demo()[0][0], 1.0)])


# --------------------------------------------------------------------------- business boosts

TYPES = {"brand": "text", "price": "number", "in_stock": "bool", "stars": "number"}


@pytest.mark.parametrize("hybrid", [False, True], ids=["sparse", "hybrid"])
def test_boosts_rescore_the_search_by_hand_and_on_every_engine(make_index, hybrid: bool) -> None:
    """score · (1 + 0.5·in_stock + 0.1·stars) over the search's top 50, the same on every engine and by hand."""
    from sparsefit.index import Boost

    ids, _, payloads, _, model = demo()
    boost = Boost.parse({"in_stock": 0.5, "stars": 0.1}, TYPES, depth=50)
    texts = query_texts()[:20]
    fusion = Fusion("dbsf", prefetch=500) if hybrid else None  # scores of every leg's whole result: no tie order
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    runs = {}
    for engine in engines:
        idx = filled(make_index, engine)
        runs[engine] = idx.search_batch(queries(len(texts)), limit=10, bm25=model.queries(texts) if hybrid else None,
                                        fusion=fusion, boost=boost)
        plain = idx.search_batch(queries(len(texts)), limit=50, bm25=model.queries(texts) if hybrid else None, fusion=fusion)
    payload_of = dict(zip(ids, payloads))
    for i, hits in enumerate(runs["edge"]):
        expected = sorted(((h.product_id, h.score * (1 + 0.5 * payload_of[h.product_id]["in_stock"]
                                                     + 0.1 * payload_of[h.product_id]["stars"])) for h in plain[i]),
                          key=lambda item: (-item[1], item[0]))[:10]
        assert_same(hits, expected, f"query {i} by hand")
        for engine in engines[1:]:
            assert_same(runs[engine][i], [(h.product_id, h.score) for h in hits], f"query {i}: edge vs {engine}")
    assert sum(len(h) for h in runs["edge"]) > 100


@pytest.mark.parametrize("spec, fragment", [
    ({"colour": 1.0}, "no product has the payload field 'colour'"),
    ({"brand": 1.0}, "'brand' holds text"),
    ({"price": "high"}, "must be a number"),
    ({"price": float("nan")}, "must be a number"),
    ({}, "JSON object of payload fields"),
    ("price", "JSON object of payload fields"),
])
def test_boost_errors_name_the_fields_that_can_be_boosted(spec, fragment) -> None:
    from sparsefit.index import Boost

    with pytest.raises(SparsefitError, match=fragment) as caught:
        Boost.parse(spec, TYPES)
    if "colour" in fragment or "brand" in fragment:
        assert "in_stock, price, stars" in str(caught.value)


# --------------------------------------------------------------------------- a dense third leg


def dense_vectors(n: int, seed: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, size)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def with_dense(make_index, engine: str) -> SparseIndex:
    ids, texts, payloads, learned, model = demo()
    idx = make_index(engine, bm25=True, dense_size=16)
    idx.upsert(ids, learned, payloads, bm25=model.documents(texts), dense=dense_vectors(len(ids), 5), batch_size=64)
    return idx


def test_dense_search_is_cosine_and_three_way_hybrid_ranks_the_same_on_every_engine(make_index) -> None:
    ids = demo()[0]
    texts = query_texts()[:20]
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    indexes = {engine: with_dense(make_index, engine) for engine in engines}
    assert indexes["edge"].dense_size == 16 and indexes["client-local"].dense_size == 16
    q_dense = dense_vectors(len(texts), 9)
    docs = dense_vectors(len(ids), 5)
    alone = indexes["edge"].search_batch(None, limit=10, dense=q_dense)
    for i, hits in enumerate(alone):  # cosine of unit vectors, by hand
        scores = docs @ q_dense[i]
        expected = sorted(zip(ids, scores.tolist()), key=lambda item: (-item[1], item[0]))[:10]
        assert_same(hits, expected, f"dense query {i}")
    # scores, not ranks, and every leg's whole result (prefetch above the catalog's 400): no engine's tie order
    fusion = Fusion("dbsf", (1.0, 1.0, 1.0), prefetch=500)
    runs = {engine: idx.search_batch(queries(len(texts)), limit=10, bm25=demo()[4].queries(texts), dense=q_dense,
                                     fusion=fusion) for engine, idx in indexes.items()}
    for engine, results in runs.items():
        for i, (a, b) in enumerate(zip(runs["edge"], results)):
            assert_same(b, [(h.product_id, h.score) for h in a], f"three-way: edge vs {engine}, query {i}")
    assert all(len(hits) == 10 for hits in runs["edge"])


def test_dense_input_errors(make_index) -> None:
    idx = filled(make_index, "edge")
    with pytest.raises(SparsefitError, match="no dense vectors"):
        idx.search(None, dense=dense_vectors(1, 1))
    dense = with_dense(make_index, "client-local")
    with pytest.raises(SparsefitError, match=r"shape \(1, 8\), not \(1, 16\)"):
        dense.search(None, dense=dense_vectors(1, 1, size=8))
    with pytest.raises(SparsefitError, match="NaN"):
        dense.search(None, dense=np.full((1, 16), np.nan))
