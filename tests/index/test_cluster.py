"""Qdrant cluster support: sharding and replication settings, and upserts in parallel batches with retries.

Real engines throughout: Qdrant Edge and qdrant-client's local mode. Where a server would fail (a node
restarting, an overloaded cluster, a bad request), :class:`FlakyClient` wraps the real qdrant-client and
raises qdrant-client's own exceptions on the calls a test names, then lets the real client do the work.
The server tests (the settings a real server applies) are in ``test_index.py``, with the other server tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import scipy.sparse as sp
from pydantic import ValidationError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from sparsefit.errors import SparsefitError
from sparsefit.index import Hit, IndexLocation, open_index
from sparsefit.index.client import ClientIndex
from sparsefit.index.uploads import (
    MAX_BACKOFF,
    is_transient,
    retry_delay,
    send_with_retries,
    upload,
)
from tests.index.test_index import FILTERS, assert_same, corpus, queries, reference

# --------------------------------------------------------------------------- a real client that fails on cue


def unavailable() -> UnexpectedResponse:
    return UnexpectedResponse(503, "Service Unavailable", b'{"status":{"error":"shard is being transferred"}}',
                              httpx.Headers())


def refused() -> ResponseHandlingException:
    return ResponseHandlingException(httpx.ConnectError("[Errno 111] Connection refused"))


def bad_request() -> UnexpectedResponse:
    return UnexpectedResponse(400, "Bad Request", b'{"status":{"error":"Wrong input: vector too long"}}',
                              httpx.Headers())


class FlakyClient:
    """The real qdrant-client, whose upserts raise ``failures`` (one per call, in order) before they reach it.

    Records every create_collection's keyword arguments and every upsert: its first point id and the thread.
    """

    def __init__(self, client: Any, failures: list[BaseException] | None = None, *,
                 fail: Callable[[list[Any]], BaseException | None] | None = None) -> None:
        self.client = client
        self.failures = list(failures or [])
        self.fail = fail  # or: decide per batch (None: let it through)
        self.upserts: list[tuple[Any, str]] = []  # (first point id, thread name) of every upsert call
        self.created: dict[str, Any] = {}
        self.lock = threading.Lock()

    def upsert(self, collection_name: str, points: list[Any], **kwargs: Any) -> Any:
        assert kwargs.get("wait") is True  # a returned upsert is written
        with self.lock:
            self.upserts.append((points[0].id, threading.current_thread().name))
            error = self.failures.pop(0) if self.failures else self.fail(points) if self.fail else None
        if error is not None:
            raise error
        return self.client.upsert(collection_name, points=points, **kwargs)

    def create_collection(self, collection_name: str, **kwargs: Any) -> Any:
        self.created = kwargs
        return self.client.create_collection(collection_name, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class FlakyIndex(ClientIndex):
    """A local-mode ClientIndex whose client is a :class:`FlakyClient` (give ``failures``/``fail`` to it)."""

    def __init__(self, failures: list[BaseException] | None = None, *, fail=None, **kw: Any) -> None:
        self._flaky_args = (failures, fail)
        kw.setdefault("location", ":memory:")
        kw.setdefault("retry_backoff", 0.001)
        super().__init__(**kw)

    def _connect(self, *args: Any) -> Any:
        failures, fail = self._flaky_args
        self.flaky = FlakyClient(super()._connect(*args), failures, fail=fail)
        return self.flaky


def _workload(idx) -> list[list[tuple[str, float]]]:
    """Every query of test_index's workload, each with one of its filters: (product id, score) per hit."""
    q = queries()
    per_row = [FILTERS[i % len(FILTERS)] for i in range(q.shape[0])]
    return [[(h.product_id, h.score) for h in hits] for hits in idx.search_batch(q, limit=10, filters=per_row)]


# --------------------------------------------------------------------------- congruence


def test_edge_and_local_mode_agree_with_the_cluster_options_set(tmp_path):
    """Sharding, replication, on-disk storage and parallel batches change where points live, never what a search finds."""
    ids, docs, payloads = corpus()
    edge = open_index(path=tmp_path / "edge", on_disk=True)
    client = open_index(local_client=True, on_disk=True, shards=6, replicas=2, write_consistency=2)
    assert client.upsert_parallel == 4 and client.upsert_batch_size == 256 and client.upsert_retries == 5
    seen: dict[str, list[int]] = {"edge": [], "client": []}
    threads: set[str] = set()
    with edge, client:
        for name, idx in (("edge", edge), ("client", client)):
            def progress(n: int, name: str = name) -> None:
                seen[name].append(n)
                threads.add(threading.current_thread().name)

            idx.upsert(ids, docs, payloads, batch_size=37, progress=progress)
            assert idx.count() == len(ids)
        assert sorted(seen["client"]) == sorted(seen["edge"]) and sum(seen["client"]) == len(ids)
        assert threads == {threading.current_thread().name}  # progress is reported in the caller's thread
        q = queries()
        for i, (a, b) in enumerate(zip(_workload(edge), _workload(client))):
            f = FILTERS[i % len(FILTERS)]
            hits = [Hit(pid, score, {}) for pid, score in b]
            assert_same(hits, a, f"edge vs client, query {i}")
            assert_same(hits, reference(q[i], 10, f), f"client vs reference, query {i}")
        assert client.retrieve(ids[:5]) == edge.retrieve(ids[:5]) == payloads[:5]
        assert client.retried == 0


def test_a_new_collection_is_created_with_the_sharding_and_on_disk_settings():
    with FlakyIndex(shards=6, replicas=2, write_consistency=2, on_disk=True) as idx:
        created = idx.flaky.created
        assert (created["shard_number"], created["replication_factor"], created["write_consistency_factor"]) == (6, 2, 2)
        assert created["on_disk_payload"] is True
        assert all(p.index.on_disk is True for p in created["sparse_vectors_config"].values())
        stored = idx._client.get_collection(idx.collection).config.params.sparse_vectors["sparse"]
        assert stored.index.on_disk is True  # what local mode keeps of it
    with FlakyIndex() as idx:  # nothing given: the server decides
        created = idx.flaky.created
        assert not {"shard_number", "replication_factor", "write_consistency_factor"} & set(created)
        assert created["on_disk_payload"] is None
        assert all(p.index is None for p in created["sparse_vectors_config"].values())


def test_an_existing_collection_keeps_what_it_was_created_with(tmp_path):
    """Sharding is where an index lives, not what is in it: reopening with other settings neither fails nor rebuilds."""
    with open_index(local_client=True, path=tmp_path / "local", shards=2) as idx:
        idx.upsert(["a"], sp.csr_matrix([[1.0, 0.0]]))
        idx.set_metadata({"model": "m"})
    with open_index(local_client=True, path=tmp_path / "local", shards=4, replicas=3, on_disk=True) as idx:
        assert idx.count() == 1 and idx.get_metadata() == {"model": "m"}


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("parallel", [1, 4])
def test_transient_errors_are_retried_and_every_point_lands(parallel):
    ids, docs, payloads = corpus()
    failures = [unavailable(), refused(), unavailable(), ResponseHandlingException(httpx.ReadTimeout("timed out"))]
    with FlakyIndex(failures, upsert_parallel=parallel, upsert_batch_size=64) as idx, \
            open_index(local_client=True) as clean:
        idx.upsert(ids, docs, payloads)
        clean.upsert(ids, docs, payloads)
        batches = -(-len(ids) // 64)
        assert idx.retried == len(failures)
        assert len(idx.flaky.upserts) == batches + len(failures)
        assert idx.count() == len(ids)
        assert _workload(idx) == _workload(clean)
        assert idx.retrieve(ids) == payloads
        if parallel > 1:
            assert len({thread for _, thread in idx.flaky.upserts}) > 1  # sent by several workers


def test_the_wait_between_tries_doubles():
    waits: list[float] = []
    calls = []

    def send(batch):
        calls.append(batch)
        if len(calls) <= 4:
            raise unavailable()

    send_with_retries(send, [1], retries=5, backoff=1.0, sleep=waits.append)
    assert len(calls) == 5 and len(waits) == 4
    for attempt, wait in enumerate(waits):
        assert 0.5 * 2**attempt <= wait <= 2**attempt  # backoff * 2**attempt, with jitter
    assert retry_delay(unavailable(), 30, 1.0) <= MAX_BACKOFF


def test_a_server_asking_to_wait_longer_is_heard():
    slow_down = UnexpectedResponse(429, "Too Many Requests", b"", httpx.Headers({"Retry-After": "7"}))
    assert retry_delay(slow_down, 0, 0.01) == 7.0
    assert retry_delay(ResourceExhaustedResponse("rate limited", 3), 0, 0.01) == 3.0


def test_a_permanent_error_fails_at_once_with_a_clear_error():
    ids, docs, payloads = corpus()
    with FlakyIndex([bad_request()], upsert_parallel=1, upsert_batch_size=64) as idx:
        started = time.perf_counter()
        with pytest.raises(SparsefitError, match="could not write points: HTTP 400 .*Wrong input") as err:
            idx.upsert(ids, docs, payloads)
        assert "tried" not in str(err.value)
        assert len(idx.flaky.upserts) == 1 and idx.retried == 0  # not sent again, nothing after it
        assert time.perf_counter() - started < 5


def test_a_permanent_error_in_parallel_stops_the_upload_and_is_not_retried():
    ids, docs, payloads = corpus()
    first_ids: list[Any] = []

    def fail(points):
        first_ids.append(points[0].id)
        return bad_request() if len(first_ids) == 3 else None

    with FlakyIndex(fail=fail, upsert_parallel=4, upsert_batch_size=16) as idx:
        with pytest.raises(SparsefitError, match="HTTP 400"):
            idx.upsert(ids, docs, payloads)
        assert idx.retried == 0
        assert len(first_ids) == len(set(first_ids))  # no batch was sent twice
        assert len(first_ids) < -(-len(ids) // 16)  # the batches after the failure were dropped


@pytest.mark.parametrize("status, message", [(401, "refused the API key"), (404, "HTTP 404")])
def test_other_client_errors_are_not_retried(status, message):
    error = UnexpectedResponse(status, "x", b"", httpx.Headers())
    with FlakyIndex([error]) as idx:
        with pytest.raises(SparsefitError, match=message):
            idx.upsert(["a"], sp.csr_matrix([[1.0]]))
        assert len(idx.flaky.upserts) == 1 and idx.retried == 0


def test_giving_up_after_the_last_retry_says_how_often_it_tried():
    with FlakyIndex([unavailable()] * 3, upsert_retries=2) as idx:
        with pytest.raises(SparsefitError, match=r"could not write points \(tried 3 times\): HTTP 503") as err:
            idx.upsert(["a", "b"], sp.csr_matrix([[1.0], [2.0]]))
        assert "shard is being transferred" in str(err.value)
        assert len(idx.flaky.upserts) == 3 and idx.retried == 2
    with FlakyIndex([refused()] * 3, upsert_retries=2) as idx, \
            pytest.raises(SparsefitError, match=r"cannot reach .* to write points \(tried 3 times\): .*refused"):
        idx.upsert(["a"], sp.csr_matrix([[1.0]]))


@pytest.mark.parametrize("error, transient", [
    (refused(), True),
    (ResponseHandlingException(httpx.ReadTimeout("timed out")), True),
    (httpx.ConnectError("refused"), True),
    (TimeoutError(), True),
    (ResourceExhaustedResponse("slow down", 1), True),
    *[(UnexpectedResponse(s, "", b"", httpx.Headers()), True) for s in (408, 429, 500, 502, 503, 504)],
    *[(UnexpectedResponse(s, "", b"", httpx.Headers()), False) for s in (400, 401, 403, 404, 409, 422)],
    (ResponseHandlingException(ValidationError.from_exception_data("x", [])), False),  # an answer we cannot read
    (ValueError("bad"), False),
])
def test_which_errors_are_transient(error, transient):
    assert is_transient(error) is transient


def test_upload_takes_batches_lazily_and_reports_each_one():
    taken: list[int] = []
    gate = threading.Event()

    def batches():
        for i in range(20):
            taken.append(i)
            yield [i] * 3

    def send(batch):
        gate.wait(5)

    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(upload(batches(), send, parallel=2, progress=lambda n: None)))
    worker.start()
    time.sleep(0.2)
    assert len(taken) <= 2 * 2 + 1  # only a few batches ahead of the ones sent
    gate.set()
    worker.join(10)
    assert done == [0] and len(taken) == 20


# --------------------------------------------------------------------------- settings checks


def test_a_folder_refuses_sharding_and_replication(tmp_path):
    for kw in ({"shards": 3}, {"replicas": 2}, {"write_consistency": 1}):
        with pytest.raises(SparsefitError, match="Qdrant Edge"):
            IndexLocation(path=tmp_path, **kw)
        with pytest.raises(SparsefitError, match="not to a Qdrant Edge folder"):
            open_index(path=tmp_path / "edge", **kw)
    assert not (tmp_path / "edge").exists()
    assert IndexLocation(path=tmp_path, on_disk=True).on_disk  # on-disk storage is for Edge too


@pytest.mark.parametrize("kw, message", [
    ({"shards": 0}, "shards must be a positive integer"),
    ({"replicas": True}, "replicas must be a positive integer"),
    ({"replicas": 2, "write_consistency": 3}, "write consistency 3 is more than the 2 replicas"),
])
def test_bad_sharding_is_refused_before_anything_is_created(kw, message):
    with pytest.raises(SparsefitError, match=message):
        IndexLocation(url="http://qdrant:6333", **kw)
    with pytest.raises(SparsefitError, match=message):
        open_index(local_client=True, **kw)


@pytest.mark.parametrize("kw, message", [
    ({"upsert_batch_size": 0}, "upsert_batch_size"), ({"upsert_parallel": 0}, "upsert_parallel"),
    ({"upsert_retries": -1}, "upsert_retries"), ({"retry_backoff": -1.0}, "retry_backoff"),
])
def test_bad_upload_options_are_refused(kw, message):
    with pytest.raises(SparsefitError, match=message):
        ClientIndex(location=":memory:", **kw)
