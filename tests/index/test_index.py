"""Index engines: congruence with each other and with an exact scipy reference, and behaviour.

Engines: Qdrant Edge ("edge"), qdrant-client local mode ("client-local") and, when
SPARSEFIT_TEST_QDRANT_URL is set, a real Qdrant server ("server").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.index import Filter, Hit, Match, Range, SparseIndex, open_index, parse_filter, point_id
from sparsefit.index.ids import ID_NAMESPACE
from tests.helpers import free_port

VOCAB = 30_522
TIE_TOKEN = 30_300  # only the tie documents use it
SERVER_URL = os.environ.get("SPARSEFIT_TEST_QDRANT_URL")
SERVER_KEY = os.environ.get("SPARSEFIT_QDRANT_API_KEY")  # a server that asks for one (docs/qdrant-cluster.md)
ENGINES = ["edge", "client-local", "server"]
BRANDS = ["Acme", "Bolt", "Crane", "Delta", "Echo"]


# --------------------------------------------------------------------------- data


@lru_cache(maxsize=None)
def corpus(n: int = 500, seed: int = 7) -> tuple[list[str], sp.csr_matrix, list[dict]]:
    """SPLADE-like documents (Zipf token use, ~40 non-zeros), mixed ids, payloads.

    The last 3 rows are all zero; 12 rows before them share one vector (score ties).
    """
    rng = np.random.default_rng(seed)
    ids = [_product_id(i) for i in range(n)]
    rows = [_zipf_row(rng, 40) for _ in range(n - 15)]
    rows += [np.array([5, TIE_TOKEN])] * 12 + [np.array([], dtype=int)] * 3
    values = [rng.uniform(0.05, 2.5, len(r)).astype(np.float32) for r in rows]
    values[n - 15 : n - 3] = [np.array([0.5, 1.5], dtype=np.float32)] * 12
    matrix = _csr(rows, values)
    payloads = [
        {
            "brand": BRANDS[i % len(BRANDS)],
            "price": round(float(rng.uniform(1, 100)), 2),
            "in_stock": bool(i % 3),
            "stars": int(i % 5) + 1,
        }
        for i in range(n)
    ]
    return ids, matrix, payloads


def _product_id(i: int) -> str:
    kind = i % 4
    if kind == 0:
        return str(100_001 + i)  # numeric -> integer point id
    if kind == 1:
        return f"SKU-{i}"  # text -> uuid
    if kind == 2:
        return f"{i:05d}"  # leading zeros -> uuid
    return str(2**64 + i)  # too big for an integer id -> uuid


def _zipf_row(rng: np.random.Generator, k: int) -> np.ndarray:
    return np.unique(rng.choice(30_000, k, p=_zipf()))


@lru_cache(maxsize=1)
def _zipf() -> np.ndarray:
    p = 1.0 / (np.arange(30_000) + 20.0)
    return p / p.sum()


def _csr(rows: Sequence[np.ndarray], values: Sequence[np.ndarray]) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(r) for r in rows])
    return sp.csr_matrix(
        (np.concatenate(values), np.concatenate(rows).astype(np.int32), indptr),
        shape=(len(rows), VOCAB),
    )


def queries(n: int = 40, seed: int = 11) -> sp.csr_matrix:
    """Query rows: Zipf tokens, one all-zero row, one row hitting only the tie documents."""
    rng = np.random.default_rng(seed)
    rows = [_zipf_row(rng, 10) for _ in range(n - 2)] + [np.array([], dtype=int), np.array([TIE_TOKEN])]
    values = [rng.uniform(0.1, 2.0, len(r)).astype(np.float32) for r in rows]
    return _csr(rows, values)


FILTERS: list[Filter | None] = [
    None,
    parse_filter({"brand": "Acme"}),
    parse_filter({"brand": ["Bolt", "Echo"]}),
    parse_filter({"price": {"gte": 20, "lt": 60}}),
    parse_filter({"in_stock": True}),
    parse_filter({"in_stock": False, "stars": [1, 2]}),
    parse_filter({"brand": {"not": "Crane"}, "price": {"gt": 10}}),
    Filter(exclude_ids=["100001", "SKU-5", "00006", str(2**64 + 7)]),
]


def predicate(f: Filter | None, pid: str, payload: dict) -> bool:
    """The filter evaluated in Python, for the reference."""
    if f is None:
        return True
    ok = all(_holds(c, payload) for c in f.must)
    return ok and not any(_holds(c, payload) for c in f.must_not) and pid not in f.exclude_ids


def _holds(c: Match | Range, payload: dict) -> bool:
    v = payload.get(c.key)
    if isinstance(c, Match):
        return any(type(v) is type(x) and v == x for x in c.values)
    if v is None or isinstance(v, bool):
        return False
    return (
        (c.gt is None or v > c.gt)
        and (c.gte is None or v >= c.gte)
        and (c.lt is None or v < c.lt)
        and (c.lte is None or v <= c.lte)
    )


def reference(
    q: sp.csr_matrix, limit: int, f: Filter | None, docs: sp.csr_matrix | None = None
) -> list[tuple[str, float]]:
    """Exact top-k: float64 dot products over documents sharing a token, score desc, id asc.

    ``docs`` replaces the corpus vectors (same ids and payloads).
    """
    ids, corpus_docs, payloads = corpus()
    docs = corpus_docs if docs is None else docs
    scores = (docs.astype(np.float64) @ q.astype(np.float64).T).toarray().ravel()
    overlap = ((docs != 0).astype(np.int32) @ (q != 0).astype(np.int32).T).toarray().ravel() > 0
    cand = [
        (ids[i], float(scores[i]))
        for i in np.flatnonzero(overlap)
        if predicate(f, ids[i], payloads[i])
    ]
    return sorted(cand, key=lambda h: (-h[1], h[0]))[:limit]


def covering_query(docs: sp.csr_matrix) -> sp.csr_matrix:
    """A short query sharing a token with every non-empty document (greedy set cover)."""
    present = (docs != 0).tocsc().astype(np.int32)
    left = np.diff(docs.indptr) > 0
    tokens = []
    while left.any():
        best = int(np.argmax(present.T @ left.astype(np.int32)))
        tokens.append(best)
        left &= ~present[:, best].toarray().ravel().astype(bool)
    return sp.csr_matrix((np.ones(len(tokens)), sorted(tokens), [0, len(tokens)]), shape=(1, VOCAB))


def assert_same(hits: list[Hit], expected: Sequence[tuple[str, float]], label: str) -> None:
    assert [h.product_id for h in hits] == [pid for pid, _ in expected], label
    np.testing.assert_allclose(
        [h.score for h in hits], [s for _, s in expected], rtol=1e-5, atol=1e-5, err_msg=label
    )


# --------------------------------------------------------------------------- engines


@pytest.fixture
def make_index(tmp_path: Path) -> Iterator[Callable[..., SparseIndex]]:
    """Factory: make_index(engine, **open_index kwargs); closes (and drops server data) after."""
    opened: list[SparseIndex] = []

    def make(engine: str, **kw) -> SparseIndex:
        if engine == "edge":
            kw.setdefault("path", tmp_path / "edge")
        elif engine == "client-local":
            kw["local_client"] = True
        elif engine == "server":
            if not SERVER_URL:
                pytest.skip("set SPARSEFIT_TEST_QDRANT_URL to test a real Qdrant server")
            kw.update(url=SERVER_URL, api_key=SERVER_KEY, recreate=True)
            kw.setdefault("collection", f"sparsefit_test_{uuid.uuid4().hex[:10]}")
        idx = open_index(**kw)
        opened.append(idx)
        return idx

    yield make
    for idx in opened:
        if getattr(idx, "url", None) and not idx._closed:
            idx._client.delete_collection(idx.collection)
        idx.close()


def _filled(make_index, engine: str, **kw) -> SparseIndex:
    ids, docs, payloads = corpus()
    idx = make_index(engine, **kw)
    idx.upsert(ids, docs, payloads, batch_size=128)
    return idx


# --------------------------------------------------------------------------- congruence


def _workload(idx: SparseIndex) -> list[list[Hit]]:
    q = queries()
    per_row = [FILTERS[i % len(FILTERS)] for i in range(q.shape[0])]
    return idx.search_batch(q, limit=10, filters=per_row, with_payload=True, batch_size=16)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_matches_exact_reference(make_index, engine: str) -> None:
    idx = _filled(make_index, engine)
    q = queries()
    results = _workload(idx)
    for i, hits in enumerate(results):
        f = FILTERS[i % len(FILTERS)]
        assert_same(hits, reference(q[i], 10, f), f"{engine} query {i} filter {f}")
    assert results[-2] == []  # the all-zero query
    tie_ids = sorted(corpus()[0][-15:-3])
    assert [h.product_id for h in results[-1]] == tie_ids[:10]


def test_engines_agree_with_each_other(make_index) -> None:
    engines = ["edge", "client-local"] + (["server"] if SERVER_URL else [])
    runs = {e: _workload(_filled(make_index, e)) for e in engines}
    base = runs["edge"]
    for engine, results in runs.items():
        for i, (a, b) in enumerate(zip(base, results)):
            assert_same(b, [(h.product_id, h.score) for h in a], f"edge vs {engine}, query {i}")
            assert [h.payload for h in a] == [h.payload for h in b]


@pytest.mark.parametrize("engine", ENGINES)
def test_single_search_with_global_filter_and_payloads(make_index, engine: str) -> None:
    ids, _, payloads = corpus()
    idx = _filled(make_index, engine)
    q = queries()[3]
    f = parse_filter({"brand": ["Acme", "Delta"], "price": {"lte": 80}})
    hits = idx.search(q, limit=25, filter=f)
    assert_same(hits, reference(q, 25, f), engine)
    by_id = dict(zip(ids, payloads))
    assert all(h.payload == by_id[h.product_id] and "_id" not in h.payload for h in hits)
    bare = idx.search_batch(q, limit=25, filters=f, with_payload=False)[0]
    assert [h.product_id for h in bare] == [h.product_id for h in hits]
    assert all(h.payload == {} for h in bare)


def test_idf_modifier_is_the_same_on_both_engines(make_index) -> None:
    docs = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, 1.0, 1.0], [0.5, 0.5, 0], [0, 0, 0]]))
    q = sp.csr_matrix(np.ones((1, 3)))
    n = np.array([2, 2, 2])  # documents per token; the empty document does not count
    idf = np.log(1 + (3 - n + 0.5) / (n + 0.5))
    expected = sorted(zip("abc", docs.toarray()[:3] @ idf), key=lambda h: (-h[1], h[0]))
    for engine in ("edge", "client-local"):
        idx = make_index(engine, modifier="idf")
        idx.upsert(list("abcd"), docs)
        assert_same(idx.search(q), [(p, float(s)) for p, s in expected], engine)


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize("engine", ENGINES)
def test_filters_exclude_what_they_should(make_index, engine: str) -> None:
    ids, _, payloads = corpus()
    by_id = dict(zip(ids, payloads))
    idx = _filled(make_index, engine)
    q = sp.csr_matrix(([1.0, 1.0, 1.0], [0, 1, 2], [0, 3]), shape=(1, VOCAB))
    everything = {h.product_id for h in idx.search(q, limit=500)}
    assert len(everything) > 100

    def found(f: Filter) -> set[str]:
        return {h.product_id for h in idx.search(q, limit=500, filter=f)}

    assert found(Filter(must=[Match("brand", "Acme")])) == {
        p for p in everything if by_id[p]["brand"] == "Acme"
    }
    assert found(Filter(must=[Match("brand", ["Acme", "Bolt"])])) == {
        p for p in everything if by_id[p]["brand"] in ("Acme", "Bolt")
    }
    for flag in (True, False):
        assert found(Filter(must=[Match("in_stock", flag)])) == {
            p for p in everything if by_id[p]["in_stock"] is flag
        }
    assert found(Filter(must=[Match("in_stock", [True, False])])) == everything
    assert found(Filter(must=[Match("stars", 3)])) == {p for p in everything if by_id[p]["stars"] == 3}
    assert found(Filter(must=[Range("price", gt=30, lte=70)])) == {
        p for p in everything if 30 < by_id[p]["price"] <= 70
    }
    assert found(Filter(must_not=[Match("brand", "Acme")])) == {
        p for p in everything if by_id[p]["brand"] != "Acme"
    }
    assert found(Filter(must=[Match("_id", "SKU-1")])) == {"SKU-1"} & everything
    assert found(Filter(must=Match("brand", "Acme"))) == found(Filter(must=[Match("brand", "Acme")]))
    excluded = sorted(everything)[:20]
    assert found(Filter(exclude_ids=excluded)) == everything - set(excluded)
    assert found(Filter(exclude_ids=["never-indexed"])) == everything


PAYLOAD_INDEXES = {"brand": "keyword", "price": "float", "in_stock": "bool", "stars": "integer"}


def _payload_indexes(idx: SparseIndex) -> dict[str, tuple[str, int | None]]:
    """The payload indexes the engine itself reports: key -> (its type, lower case; points indexed or None)."""
    if idx.engine == "edge":
        schema = idx._shard.info().payload_schema
    else:
        schema = idx._client.get_collection(idx.collection).payload_schema
    types = {key: str(info.data_type).rsplit(".", 1)[-1].lower() for key, info in schema.items()}
    return {key: (types[key], getattr(info, "points", None)) for key, info in schema.items()}


@pytest.mark.parametrize("engine", ["edge", "server"])
def test_payload_indexes_are_built_and_keep_filter_results(make_index, engine: str) -> None:
    """Where payload indexes exist (Edge, a Qdrant server), the engine holds one per key, of the asked type,
    over every point, and the filtered results are the same as without them."""
    idx = _filled(make_index, engine)
    before = _workload(idx)
    assert _payload_indexes(idx) == {}
    for key, kind in PAYLOAD_INDEXES.items():
        idx.create_payload_index(key, kind)
    built = _payload_indexes(idx)
    assert {key: kind for key, (kind, _) in built.items()} == PAYLOAD_INDEXES
    if engine == "edge":  # the server reports no per-index point count in every version
        assert {points for _, points in built.values()} == {len(corpus()[0])}
    assert _workload(idx) == before
    with pytest.raises(SparsefitError, match="unknown payload index kind"):
        idx.create_payload_index("brand", "text")


def test_payload_indexes_survive_reopening_an_edge_index(make_index, tmp_path) -> None:
    idx = _filled(make_index, "edge", path=tmp_path / "kept")
    idx.create_payload_index("brand", "keyword")
    idx.close()
    again = make_index("edge", path=tmp_path / "kept", create=False)
    assert _payload_indexes(again) == {"brand": ("keyword", len(corpus()[0]))}
    f = parse_filter({"brand": "Acme"})
    assert_same(again.search(queries()[3], limit=25, filter=f), reference(queries()[3], 25, f), "reopened")


def test_local_mode_has_no_payload_indexes_but_still_checks_the_kind(make_index) -> None:
    """qdrant-client's local mode has no payload indexes: creating one does nothing there (by design), yet an
    unknown kind is still refused, so code written against local mode fails the same way on a server."""
    idx = _filled(make_index, "client-local")
    before = _workload(idx)
    for key, kind in PAYLOAD_INDEXES.items():
        idx.create_payload_index(key, kind)
    assert _workload(idx) == before
    with pytest.raises(SparsefitError, match="unknown payload index kind"):
        idx.create_payload_index("brand", "text")


def test_parse_filter_shapes_and_errors() -> None:
    f = parse_filter(
        {"brand": "Acme", "color": ["red", "blue"], "price": {"lt": 50}, "ok": True,
         "size": {"not": ["S", "M"]}, "$exclude_ids": ["SKU-7", "42"]}
    )
    assert f.must == (Match("brand", "Acme"), Match("color", ("red", "blue")), Range("price", lt=50),
                      Match("ok", True))
    assert f.must_not == (Match("size", ("S", "M")),)
    assert f.exclude_ids == ("SKU-7", "42")
    assert parse_filter(None).is_empty and parse_filter({}).is_empty
    bad = [
        {"price": 9.99},
        {"price": {"below": 5}},
        {"price": {"lt": "5"}},
        {"price": {"lt": float("nan")}},
        {"price": {}},
        {"color": []},
        {"color": ["red", 1]},
        {"brand": None},
        {"$exclude_ids": "SKU-7"},
        {"$unknown": 1},
        ["brand", "Acme"],
    ]
    for d in bad:
        with pytest.raises(SparsefitError):
            parse_filter(d)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- storage


@pytest.mark.parametrize("engine", ENGINES)
def test_retrieve_count_and_empty_vectors(make_index, engine: str) -> None:
    ids, docs, payloads = corpus()
    idx = _filled(make_index, engine)
    assert idx.count() == len(ids)
    empty_ids = ids[-3:]
    got = idx.retrieve([ids[0], "missing", empty_ids[0], ids[1]])
    assert got == [payloads[0], None, payloads[-3], payloads[1]]
    # Empty documents are stored but never found, not even by an everything-filter search.
    q = covering_query(docs)
    found = {h.product_id for h in idx.search(q, limit=1000)}
    assert found == set(ids) - set(empty_ids)
    # Upsert replaces: a new payload, and an empty vector removes the point from search.
    idx.upsert([ids[0]], sp.csr_matrix((1, VOCAB)), [{"brand": "Zeta"}])
    assert idx.retrieve([ids[0]]) == [{"brand": "Zeta"}]
    assert ids[0] not in {h.product_id for h in idx.search(q, limit=1000)}
    assert idx.count() == len(ids)


@pytest.mark.parametrize("engine", ENGINES)
def test_metadata_round_trip(make_index, engine: str) -> None:
    idx = make_index(engine)
    assert idx.get_metadata() == {}
    meta = {"model": {"fingerprint": "abc123"}, "catalog": "f00d", "complete": False, "n": [1, 2.5]}
    idx.set_metadata(meta)
    assert idx.get_metadata() == meta
    idx.set_metadata({"complete": True})  # replaces, not merges
    assert idx.get_metadata() == {"complete": True}
    with pytest.raises(SparsefitError, match="not plain JSON"):
        idx.set_metadata({"when": object()})
    with pytest.raises(SparsefitError, match="not plain JSON"):
        idx.set_metadata({"x": float("nan")})
    assert idx.get_metadata() == {"complete": True}


@pytest.mark.parametrize("engine", ["edge", "client-local-path"])
def test_reopen_keeps_data_and_metadata(make_index, tmp_path: Path, engine: str) -> None:
    ids, docs, payloads = corpus()
    kw = {"path": tmp_path / "idx"}
    name = "edge" if engine == "edge" else "client-local"
    with make_index(name, **kw) as idx:
        idx.upsert(ids, docs, payloads)
        idx.set_metadata({"complete": True})
        before = _workload(idx)
    idx = make_index(name, create=False, **kw)
    assert idx.count() == len(ids)
    assert idx.get_metadata() == {"complete": True}
    assert _workload(idx) == before


def test_edge_second_open_is_a_clear_error(make_index, tmp_path: Path) -> None:
    make_index("edge", path=tmp_path / "idx")
    with pytest.raises(SparsefitError, match="already open") as err:
        open_index(path=tmp_path / "idx")
    assert str(tmp_path / "idx") in str(err.value) and err.value.hint


def test_edge_folder_rules(make_index, tmp_path: Path) -> None:
    with pytest.raises(SparsefitError, match="no index in"):
        open_index(path=tmp_path / "nothing", create=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with pytest.raises(SparsefitError, match="not empty and holds no index"):
        open_index(path=tmp_path / "docs")
    assert (tmp_path / "docs" / "notes.txt").exists()
    with make_index("edge", path=tmp_path / "idx") as idx:
        idx.upsert(["a"], sp.csr_matrix([[1.0]]))
        idx.set_metadata({"complete": True})
    with pytest.raises(SparsefitError, match='modifier "none", not "idf"'):
        open_index(path=tmp_path / "idx", modifier="idf")
    idx = make_index("edge", path=tmp_path / "idx", recreate=True, modifier="idf")
    assert idx.count() == 0 and idx.get_metadata() == {}
    with pytest.raises(SparsefitError, match="already open"):
        open_index(path=tmp_path / "idx", recreate=True)
    assert idx.count() == 0  # the open index survived the refused recreate


def test_client_collection_rules(make_index, tmp_path: Path) -> None:
    with pytest.raises(SparsefitError, match='no collection "other"'):
        make_index("client-local", collection="other", create=False)
    idx = make_index("client-local", collection="c", modifier="idf")
    assert idx.modifier == "idf"
    with pytest.raises(SparsefitError, match="both an index folder and a Qdrant URL"):
        open_index(path="x", url="http://localhost:6333")
    with pytest.raises(SparsefitError, match="no index location"):
        open_index()
    make_index("client-local", path=tmp_path / "local")
    with pytest.raises(SparsefitError, match="already open"):
        open_index(local_client=True, path=tmp_path / "local")


@pytest.mark.parametrize("engine", ENGINES)
def test_on_disk_storage_works(make_index, engine: str) -> None:
    idx = make_index(engine, on_disk=True)
    idx.upsert(["a", "b"], sp.csr_matrix([[1.0, 0.0], [0.5, 2.0]]), [{"k": 1}, {"k": 2}])
    assert [(h.product_id, h.score, h.payload) for h in idx.search(sp.csr_matrix([[1.0, 1.0]]))] == [
        ("b", 2.5, {"k": 2}),
        ("a", 1.0, {"k": 1}),
    ]


def test_server_shards_replicates_and_stores_on_disk_as_asked(make_index) -> None:
    """Qdrant's own sharding and replication: on a cluster each shard gets its replicas on different nodes
    (as many as there are nodes, up to 2); a single server keeps one copy of each shard."""
    if not SERVER_URL:
        pytest.skip("set SPARSEFIT_TEST_QDRANT_URL to test a real Qdrant server")
    from qdrant_client import QdrantClient

    with QdrantClient(url=SERVER_URL, api_key=SERVER_KEY, check_compatibility=False) as probe:
        status = probe.cluster_status()
    nodes = len(status.peers) if status.status == "enabled" else 1
    replicas = min(2, nodes)
    idx = make_index("server", shards=3, replicas=replicas, write_consistency=replicas, on_disk=True)
    params = idx._client.get_collection(idx.collection).config.params
    assert (params.shard_number, params.replication_factor, params.write_consistency_factor) == (3, replicas, replicas)
    assert params.on_disk_payload is True
    assert all(v.index is not None and v.index.on_disk is True for v in params.sparse_vectors.values())
    layout = idx._client.http.distributed_api.collection_cluster_info(idx.collection).result
    assert layout.shard_count == 3
    assert len(layout.local_shards) + len(layout.remote_shards) == 3 * replicas  # every replica of every shard
    ids, docs, payloads = corpus()
    idx.upsert(ids, docs, payloads, batch_size=50)  # batches in parallel, over every shard
    assert idx.count() == len(ids) and idx.retried == 0
    q = queries()
    for i, hits in enumerate(_workload(idx)):
        assert_same(hits, reference(q[i], 10, FILTERS[i % len(FILTERS)]), f"sharded server, query {i}")


def test_server_default_sharding_when_none_is_asked(make_index) -> None:
    idx = make_index("server")
    params = idx._client.get_collection(idx.collection).config.params
    assert params.shard_number >= 1 and params.replication_factor >= 1  # the server's own defaults
    assert all(v.index is None or not v.index.on_disk for v in params.sparse_vectors.values())


def test_unreachable_url_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SparsefitError, match="cannot reach Qdrant at") as err:
        open_index(url=url, timeout=5)
    assert url in str(err.value) and "Fix:" in str(err.value)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("engine", ["edge", "client-local"])
def test_invalid_input_is_a_sparsefit_error(make_index, engine: str) -> None:
    idx = make_index(engine)
    good = sp.csr_matrix([[1.0, 0.0], [0.0, 2.0]])
    cases = {
        "NaN or infinite": lambda: idx.upsert(["a", "b"], sp.csr_matrix([[np.nan, 0], [0, 1.0]])),
        "2 product ids but 3": lambda: idx.upsert(["a", "b"], sp.csr_matrix(np.ones((3, 2)))),
        "scipy sparse": lambda: idx.upsert(["a", "b"], np.ones((2, 2))),
        "not a valid sparse": lambda: idx.upsert(["a", "b"], _broken_csr()),
        "appears twice": lambda: idx.upsert(["a", "a"], good),
        "reserved key": lambda: idx.upsert(["a", "b"], good, [{"_id": "x"}, {}]),
        "not JSON": lambda: idx.upsert(["a", "b"], good, [{"t": object()}, {}]),
        "not a string": lambda: idx.upsert([1, 2], good),  # type: ignore[list-item]
        "one query row": lambda: idx.search(good),
        "positive integer": lambda: idx.search(good[0], limit=0),
        "2 query rows but 1 filters": lambda: idx.search_batch(good, filters=[None]),
    }
    for message, call in cases.items():
        with pytest.raises(SparsefitError, match=message):
            call()
    assert idx.count() == 0
    idx.close()
    with pytest.raises(SparsefitError, match="closed"):
        idx.count()


def _broken_csr() -> sp.csr_matrix:
    m = sp.csr_matrix([[1.0, 0, 2.0]])
    m.indices = m.indices[:1]  # indices and values no longer line up
    return m


def test_vectors_are_normalised_before_sending(make_index) -> None:
    # Duplicates (summed), unsorted indices, explicit zeros: all engines see the same vector.
    dup = sp.csr_matrix(([1.0, 2.0, 0.0, 3.0], [5, 1, 7, 5], [0, 4]), shape=(1, 10))
    assert not dup.has_canonical_format
    for engine in ("edge", "client-local"):
        idx = make_index(engine)
        idx.upsert(["x"], dup)
        [hit] = idx.search(sp.csr_matrix(([1.0, 1.0], [1, 5], [0, 2]), shape=(1, 10)))
        assert hit.product_id == "x" and hit.score == pytest.approx(6.0)
        assert idx.search(sp.csr_matrix(([1.0], [7], [0, 1]), shape=(1, 10))) == []


def test_edge_panics_become_sparsefit_errors(make_index) -> None:
    import qdrant_edge as qe

    idx = make_index("edge")
    bad = qe.Point(1, {"sparse": qe.SparseVector([1, 2], [1.0])}, {"_id": "1"})
    with pytest.raises(SparsefitError, match="Qdrant Edge could not write points"):
        idx._apply(qe.UpdateOperation.upsert_points([bad]), "write points")  # type: ignore[attr-defined]


def test_batches_and_progress(make_index) -> None:
    ids, docs, payloads = corpus()
    idx = make_index("edge")
    seen: list[int] = []
    idx.upsert(ids, docs, payloads, batch_size=64, progress=seen.append)
    assert sum(seen) == len(ids) and max(seen) == 64
    seen.clear()
    q = queries()
    idx.search_batch(q, batch_size=7, progress=seen.append)
    assert sum(seen) == q.shape[0]


# --------------------------------------------------------------------------- point ids


def test_point_id_mapping() -> None:
    assert point_id("100001") == 100001
    assert point_id("0") == 0
    assert point_id(str(2**63 - 1)) == 2**63 - 1
    text_like = ["00123", "0123", "-5", "+5", "1.0", " 7", "7 ", str(2**63), "SKU-7", "١٢٣", "x" * 500]
    for pid in text_like:
        pt = point_id(pid)
        assert isinstance(pt, str) and pt == str(uuid.uuid5(ID_NAMESPACE, pid)), pid
        assert uuid.UUID(pt).version == 5
    assert len({point_id(p) for p in text_like}) == len(text_like)
    assert point_id("00123") != point_id("123")
    for bad in ["", 5, None]:
        with pytest.raises(SparsefitError):
            point_id(bad)  # type: ignore[arg-type]


def test_canonical_rows_fast_path_reads_what_the_full_check_cleans() -> None:
    """sparse_rows skips scipy's checks for a clean CSR matrix; anything else goes through clean_csr."""
    from sparsefit.index.vectors import _canonical_rows, clean_csr, rows_of as _rows_of, sparse_rows

    rng = np.random.default_rng(3)
    taken = 0
    for trial in range(600):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 9)))
        dense = rng.integers(-1, 3, size=shape) * (rng.random(shape) < 0.5)
        m = sp.csr_matrix(dense.astype(np.float64))
        if trial % 3 == 0:  # shuffled entries, an explicit zero, a duplicate: not canonical
            coo = m.tocoo()
            order = rng.permutation(coo.nnz)
            rows = np.r_[coo.row[order], 0, 0]
            cols = np.r_[coo.col[order], 0, shape[1] - 1]
            m = sp.csr_matrix((np.r_[coo.data[order], 0.0, 1.0], (rows, cols)), shape=shape)
            m = sp.csr_matrix((m.data, m.indices, m.indptr), shape=shape)  # keeps the duplicates
        taken += _canonical_rows(m) is not None
        fast, full = sparse_rows(m), _rows_of(clean_csr(m))
        for a, b in zip((fast.indptr, fast.indices, fast.values), (full.indptr, full.indices, full.values)):
            np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}")
    assert 300 < taken < 600  # both paths ran
    with pytest.raises(SparsefitError, match="NaN"):
        sparse_rows(sp.csr_matrix([[np.nan, 1.0]]))
