"""The query batcher: concurrent requests share forward passes, errors reach every waiting request, stop() ends it.

The encoder is the real SPLADE-tiny behind a thin wrapper that records the texts of each forward pass. To make
requests meet deterministically, the test holds the batcher's encode lock (as another request's forward pass
would): the worker then waits at the lock while the other requests queue up behind it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, wait

import numpy as np
import pytest

from sparsefit.serving.service import QueryBatcher

QUERIES = ["cordless drill", "garden hose 50 ft", "brass door knob", "led bulb", "claw hammer", "paint roller",
           "wireless mouse", "copper pipe", "bathroom faucet", "mouse trap", "extension cord", "ladder"]


class CountingEncoder:
    """A real encoder behind a wrapper that records each forward pass (its texts) and can be made to fail."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.passes: list[list[str]] = []
        self.error: BaseException | None = None

    def encode_queries(self, texts, **options):
        self.passes.append(list(texts))
        if self.error is not None:
            raise self.error
        return self.encoder.encode_queries(texts, **options)


@pytest.fixture
def counting(splade_tiny) -> CountingEncoder:
    return CountingEncoder(splade_tiny)


@pytest.fixture
def batcher(counting):
    batcher = QueryBatcher(counting, threading.Lock())
    yield batcher
    batcher.stop()
    batcher.thread.join(10)


def _in_thread(call, *args) -> Future:
    """``call(*args)`` in a daemon thread; its outcome in a Future (a request the batcher never answers leaves
    only a daemon thread behind, so a failing test fails instead of hanging at exit)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(call(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def _queued_while_busy(batcher: QueryBatcher, texts: list[str]) -> list[Future]:
    """Start one request per text (each in its own thread) while the test holds the encode lock; return once
    every request is queued. The caller releases the lock (``batcher.lock``) afterwards."""
    puts: list[object] = []
    put = batcher.queue.put
    batcher.queue.put = lambda item, *a, **k: (put(item, *a, **k), puts.append(item))[0]  # counts the requests queued
    futures = [_in_thread(batcher.encode, text) for text in texts]
    deadline = time.time() + 30
    while len(puts) < len(texts):
        assert time.time() < deadline, f"only {len(puts)} of {len(texts)} requests reached the queue"
        time.sleep(0.01)
    batcher.queue.put = put
    return futures


def test_a_lone_query_is_encoded_at_once_in_a_pass_of_its_own(batcher, counting, splade_tiny):
    vector = batcher.encode("cordless drill")
    assert counting.passes == [["cordless drill"]]
    np.testing.assert_allclose(vector.toarray(), splade_tiny.encode_queries(["cordless drill"]).toarray(), atol=1e-5)


def _answered(futures: list[Future], timeout: float = 60) -> None:
    """Every request got its answer (a vector or an error) within ``timeout`` seconds."""
    _, waiting = wait(futures, timeout=timeout)
    assert not waiting, f"{len(waiting)} of {len(futures)} requests never got an answer"


def test_concurrent_queries_share_forward_passes_and_each_gets_its_own_vector(batcher, counting, splade_tiny):
    with batcher.lock:  # the worker is busy: all twelve requests wait together
        futures = _queued_while_busy(batcher, QUERIES)
    _answered(futures)
    vectors = [f.result() for f in futures]
    # The worker took the first request(s) before it reached the lock; the rest went into the next pass.
    assert 1 <= len(counting.passes) <= 2 < len(QUERIES), counting.passes
    assert sorted(t for p in counting.passes for t in p) == sorted(QUERIES)  # each text encoded exactly once
    alone = [splade_tiny.encode_queries([q]).toarray() for q in QUERIES]  # the reference: each query on its own
    for query, vector, expected in zip(QUERIES, vectors, alone):
        assert vector.shape == expected.shape
        np.testing.assert_allclose(vector.toarray(), expected, atol=1e-4, err_msg=query)


def test_an_encoder_error_reaches_every_waiting_request_and_the_worker_goes_on(batcher, counting):
    broken = RuntimeError("the encoder broke")
    counting.error = broken
    with batcher.lock:
        futures = _queued_while_busy(batcher, QUERIES[:6])
    _answered(futures)  # none may wait forever
    assert [f.exception() for f in futures] == [broken] * 6
    assert sum(len(p) for p in counting.passes) == 6
    counting.error = None
    later = _in_thread(batcher.encode, "claw hammer")
    _answered([later])
    assert later.result().nnz > 0  # the worker thread survived the error


def test_stop_answers_the_requests_already_queued_then_ends_the_worker(batcher, counting):
    assert batcher.thread.is_alive()
    with batcher.lock:
        futures = _queued_while_busy(batcher, QUERIES[:3])
        batcher.stop()  # queued after the three requests
    _answered(futures)
    assert [f.result().nnz > 0 for f in futures] == [True] * 3
    batcher.thread.join(10)
    assert not batcher.thread.is_alive()


def test_closing_the_service_ends_its_batcher_thread(splade_tiny, tmp_path):
    from sparsefit.config import load_settings
    from sparsefit.index import open_index
    from sparsefit.serving.service import SearchService

    index = open_index(path=tmp_path / "index")
    index.upsert(["P1", "P2"], splade_tiny.encode_documents(["cordless drill", "garden hose"]), [{}, {}])
    service = SearchService(tmp_path, load_settings(), splade_tiny, index)
    assert service.search("drill", limit=1)["hits"][0]["product_id"] == "P1"
    thread = service._batcher.thread
    assert thread.is_alive()
    service.close()
    thread.join(10)
    assert not thread.is_alive()
