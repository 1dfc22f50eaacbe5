"""Two-stage search: candidates from capped posting lists, rescored exactly; same on every engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.index import TwoStage, open_index
from sparsefit.index.two_stage import candidate_vectors, heaviest_terms, posting_thresholds

from tests.index.test_index import ENGINES, FILTERS, SERVER_URL, assert_same, corpus, make_index, queries, reference

__all__ = ["make_index"]  # the fixture, imported for these tests

# On the 500-document corpus: posting lists of the common tokens are cut to 20 documents and
# 10 candidates are rescored, so the candidate stage really decides what is found.
TIGHT = TwoStage(posting_cap=20, query_terms=3, candidates=10)
# Nothing is cut and every candidate is rescored: two-stage must equal exact search.
LOOSE = TwoStage(posting_cap=10_000, query_terms=1_000, candidates=500)


def _filled(make_index, engine: str, two_stage: TwoStage, **kw):
    ids, docs, payloads = corpus()
    idx = make_index(engine, two_stage=two_stage, **kw)
    idx.upsert(ids, docs, payloads, batch_size=128)
    return idx


def _per_row_filters(n: int) -> list:
    return [FILTERS[i % len(FILTERS)] for i in range(n)]


def test_thresholds_keep_each_terms_heaviest_postings() -> None:
    docs = corpus()[1]
    thresholds = posting_thresholds(docs, 20)
    lengths = np.diff(docs.tocsc().indptr)
    assert set(thresholds) == set(np.flatnonzero(lengths > 20).tolist()) and len(thresholds) > 50
    kept = candidate_vectors(docs, thresholds).tocsc()
    full = docs.tocsc()
    for term in list(thresholds)[:200]:
        weights = np.sort(full.data[full.indptr[term] : full.indptr[term + 1]])[::-1]
        mine = np.sort(kept.data[kept.indptr[term] : kept.indptr[term + 1]])[::-1]
        assert len(mine) >= 20 and mine.min() >= weights[19]  # ties at the threshold are all kept
        np.testing.assert_array_equal(mine, weights[: len(mine)])
    rare = np.flatnonzero((lengths > 0) & (lengths <= 20))
    assert (np.diff(kept.indptr)[rare] == lengths[rare]).all()  # short lists are kept whole


def test_heaviest_terms_keeps_index_order() -> None:
    assert heaviest_terms([2, 5, 9, 11], [0.5, 0.1, 2.0, 0.7], 2) == ([9, 11], [2.0, 0.7])
    assert heaviest_terms([2, 5], [0.5, 0.1], 8) == ([2, 5], [0.5, 0.1])


@pytest.mark.parametrize("engine", ENGINES)
def test_without_cuts_two_stage_equals_exact_search(make_index, engine: str) -> None:
    idx = _filled(make_index, engine, LOOSE)
    assert idx.two_stage is not None and idx.two_stage.thresholds == {}
    q = queries()
    results = idx.search_batch(q, limit=10, filters=_per_row_filters(q.shape[0]), with_payload=True)
    for i, hits in enumerate(results):
        f = FILTERS[i % len(FILTERS)]
        assert_same(hits, reference(q[i], 10, f), f"{engine} query {i} filter {f}")


@pytest.mark.parametrize("engine", ENGINES)
def test_tight_two_stage_rescores_its_candidates_exactly(make_index, engine: str) -> None:
    idx = _filled(make_index, engine, TIGHT)
    ids, docs, payloads = corpus()
    cand = candidate_vectors(docs, idx.two_stage.thresholds)
    q = queries()
    filters = _per_row_filters(q.shape[0])
    approx = idx.search_batch(q, limit=10, filters=filters)
    exact = idx.search_batch(q, limit=10, filters=filters, exact=True)
    differ = 0
    for i in range(q.shape[0]):
        assert_same(exact[i], reference(q[i], 10, filters[i]), f"exact=True, query {i}")
        full = dict(reference(q[i], len(ids), filters[i]))
        for hit in approx[i]:  # every hit scored with its full vector, and found by the top terms
            assert hit.score == pytest.approx(full[hit.product_id], rel=1e-5, abs=1e-5)
        top_terms = heaviest_terms(*_row(q[i]), TIGHT.query_terms)[0]
        reachable = {ids[d] for d in np.flatnonzero(cand[:, top_terms].getnnz(axis=1))}
        assert {h.product_id for h in approx[i]} <= reachable
        assert [h.score for h in approx[i]] == sorted((h.score for h in approx[i]), reverse=True)
        differ += [h.product_id for h in approx[i]] != [h.product_id for h in exact[i]]
    assert differ >= 10  # the cuts matter on this corpus: the test would notice exact search


def test_engines_agree_on_two_stage_results(make_index) -> None:
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    q = queries()
    runs = {
        e: _filled(make_index, e, TIGHT).search_batch(q, limit=10, filters=_per_row_filters(q.shape[0]))
        for e in engines
    }
    for engine, results in runs.items():
        for i, (a, b) in enumerate(zip(runs["edge"], results)):
            assert_same(b, [(h.product_id, h.score) for h in a], f"edge vs {engine}, query {i}")


@pytest.mark.parametrize("engine", ["edge", "client-local-path"])
def test_two_stage_settings_and_thresholds_survive_reopening(make_index, tmp_path, engine: str) -> None:
    kw = {"path": tmp_path / "idx"}
    if engine == "client-local-path":
        kw["local_client"] = True
    ids, docs, payloads = corpus()
    with open_index(two_stage=TIGHT, **kw) as idx:
        idx.upsert(ids[:400], docs[:400], payloads[:400])
        thresholds = idx.two_stage.thresholds
        before = idx.search_batch(queries(), limit=10)
        idx.set_metadata({"model": "m"})  # the user's metadata lives beside the two-stage settings
    with open_index(**kw) as idx:  # without two_stage: whatever the index has
        assert idx.two_stage == TIGHT and idx.two_stage.thresholds == thresholds
        assert idx.get_metadata() == {"model": "m"}
        assert idx.search_batch(queries(), limit=10) == before
        idx.upsert(ids[400:], docs[400:], payloads[400:])  # later upserts keep the first thresholds
        assert idx.two_stage.thresholds == thresholds
    with open_index(two_stage=TIGHT, **kw) as idx:
        assert idx.count() == len(ids)
    with pytest.raises(SparsefitError, match="two-stage"):
        open_index(two_stage=LOOSE, **kw)


def test_a_rejected_upsert_does_not_fix_the_thresholds(tmp_path) -> None:
    ids, docs, payloads = corpus()
    with open_index(path=tmp_path / "idx", two_stage=TIGHT) as idx:
        with pytest.raises(SparsefitError, match="product ids but"):
            idx.upsert(ids[:10], docs)  # 10 ids, 500 rows
        assert idx.two_stage.thresholds is None
        idx.upsert(ids, docs, payloads)
        assert idx.two_stage.thresholds == posting_thresholds(docs, TIGHT.posting_cap)


def test_exact_index_refuses_two_stage_and_vice_versa(tmp_path) -> None:
    with open_index(path=tmp_path / "exact") as idx:
        idx.upsert(["a"], sp.csr_matrix([[1.0, 0.5]]))
    with pytest.raises(SparsefitError, match="exact search only"):
        open_index(path=tmp_path / "exact", two_stage=TIGHT)
    with pytest.raises(SparsefitError, match="posting_cap must be a positive integer"):
        TwoStage(posting_cap=0)


def _row(m: sp.csr_matrix) -> tuple[list[int], list[float]]:
    m = sp.csr_matrix(m)
    return m.indices.tolist(), m.data.astype(np.float64).tolist()


def _counting_engine_queries(idx, monkeypatch) -> list[int]:
    """Count the queries that reach the engine's own search (one list entry per call)."""
    calls: list[int] = []
    real = idx._engine_query

    def counted(queries, with_payload):
        calls.append(len(queries))
        return real(queries, with_payload)

    monkeypatch.setattr(idx, "_engine_query", counted)
    return calls


def test_edge_rescores_candidates_from_its_vector_copy(make_index, monkeypatch) -> None:
    idx = _filled(make_index, "edge", TIGHT)
    assert [p.name for p in (idx.path / "sparsefit_vectors").iterdir()] == ["000001"]
    reference_run = _filled(make_index, "client-local", TIGHT)
    q = queries()
    filters = _per_row_filters(q.shape[0])
    calls = _counting_engine_queries(idx, monkeypatch)
    got = idx.search_batch(q, limit=10, filters=filters, with_payload=True)
    assert calls == []  # every query rescored from the copy
    for i, (a, b) in enumerate(zip(got, reference_run.search_batch(q, limit=10, filters=filters, with_payload=True))):
        assert_same(a, [(h.product_id, h.score) for h in b], f"query {i}")
        assert [h.payload for h in a] == [h.payload for h in b]
    idx.search_batch(q[:3], limit=10, exact=True)
    assert calls == [3]  # exact search is the engine's


def test_without_its_vector_copy_edge_rescores_in_the_engine(tmp_path, monkeypatch) -> None:
    ids, docs, payloads = corpus()
    with open_index(path=tmp_path / "idx", two_stage=TIGHT) as idx:
        idx.upsert(ids[:400], docs[:400], payloads[:400])
        before = idx.search_batch(queries(), limit=10)
    shutil.rmtree(tmp_path / "idx" / "sparsefit_vectors")  # as an index built before the copy existed
    with open_index(path=tmp_path / "idx") as idx:
        calls = _counting_engine_queries(idx, monkeypatch)
        for i, (a, b) in enumerate(zip(idx.search_batch(queries(), limit=10), before)):
            assert_same(a, [(h.product_id, h.score) for h in b], f"query {i}")
        assert calls == [int((queries().getnnz(axis=1) > 0).sum())]  # all-zero queries ask no engine
        idx.upsert(ids[400:], docs[400:], payloads[400:])  # the copy now holds only these 100
        calls.clear()
        after = idx.search_batch(queries(), limit=10)
        assert 0 < calls[0] < int((queries().getnnz(axis=1) > 0).sum())  # a candidate outside the copy: to the engine
    with open_index(path=tmp_path / "full", two_stage=TIGHT) as full:
        full.upsert(ids[:400], docs[:400], payloads[:400])  # same thresholds as above
        full.upsert(ids[400:], docs[400:], payloads[400:])
        for i, (a, b) in enumerate(zip(after, full.search_batch(queries(), limit=10))):
            assert_same(a, [(h.product_id, h.score) for h in b], f"query {i}")


def test_the_vector_copy_follows_a_replaced_vector_across_reopening(tmp_path) -> None:
    ids, docs, payloads = corpus()
    q = queries()
    changed = docs.tolil(copy=True)
    hit = {reference(q[i], 1, None)[0][0] for i in range(q.shape[0]) if q[i].nnz}
    rows = [ids.index(pid) for pid in sorted(hit)][:5]
    for r in rows:  # the top product of some queries gets a vector that matches nothing
        changed[r] = 0
        changed[r, 30_000] = 1.0
    changed = sp.csr_matrix(changed)
    with open_index(path=tmp_path / "idx", two_stage=LOOSE) as idx:
        idx.upsert(ids, docs, payloads)
        idx.upsert([ids[r] for r in rows], changed[rows])
        now = idx.search_batch(q, limit=10)
    with open_index(path=tmp_path / "idx") as idx:  # two chunks, read as one
        assert len(list((tmp_path / "idx" / "sparsefit_vectors").iterdir())) == 2
        assert idx.search_batch(q, limit=10) == now
    for i, hits in enumerate(now):
        assert_same(hits, reference(q[i], 10, None, docs=changed), f"query {i}")
    assert not {ids[r] for r in rows} & {h.product_id for hits in now for h in hits}


def test_an_idf_two_stage_index_keeps_no_vector_copy(tmp_path) -> None:
    ids, docs, payloads = corpus()
    with open_index(path=tmp_path / "idx", two_stage=LOOSE, modifier="idf") as idx:
        idx.upsert(ids, docs, payloads)
        assert not (tmp_path / "idx" / "sparsefit_vectors").exists()  # idf weights live in the engine
        assert idx.search_batch(queries(), limit=10) == idx.search_batch(queries(), limit=10, exact=True)
