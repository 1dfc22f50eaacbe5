"""Upserts to a Qdrant server: batches sent by parallel workers, each retried with exponential backoff.

A batch that fails with a *transient* error (the connection refused or dropped, a timeout, HTTP 408,
429 or 5xx: a node restarting, a shard moving, a server asking to slow down) is sent again after
``backoff * 2**attempt`` seconds (at most :data:`MAX_BACKOFF`, with jitter, or the server's
``Retry-After`` when longer), up to ``retries`` times. Any other error (HTTP 400 for a bad point,
401/403 for a wrong key, 404 for a missing collection) is raised at once: sending it again cannot help.
Upserting a point twice stores it once, so a batch retried after a lost answer is harmless.

qdrant-client's own ``upload_points`` is not used: it retries every error alike (a 400 too) without
waiting in between, its parallel workers are processes, and it reports no progress.

Example:
    >>> sent = []
    >>> upload([[1, 2], [3]], sent.append, parallel=2, progress=lambda n: None)
    0
    >>> sorted(sent)
    [[1, 2], [3]]
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

import httpx
from pydantic import ValidationError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

T = TypeVar("T")

MAX_BACKOFF = 30.0  # seconds: the longest wait between two tries of a batch (unless the server asks for more)
TRANSIENT_STATUS = frozenset({408, 429})  # and every 5xx


def is_transient(error: BaseException) -> bool:
    """Whether sending the same request again may succeed: connection errors, timeouts, HTTP 408, 429, 5xx.

    Example:
        >>> is_transient(ResponseHandlingException(httpx.ConnectError("refused")))
        True
        >>> is_transient(UnexpectedResponse(400, "Bad Request", b"", httpx.Headers()))
        False
    """
    if isinstance(error, ResourceExhaustedResponse):  # HTTP 429 with Retry-After
        return True
    if isinstance(error, UnexpectedResponse):
        status = error.status_code or 0
        return status in TRANSIENT_STATUS or status >= 500
    if isinstance(error, ResponseHandlingException):  # qdrant-client wraps transport errors (and bad answers) in it
        return not isinstance(error.source, ValidationError)
    return isinstance(error, (httpx.TransportError, TimeoutError, ConnectionError))


def retry_delay(error: BaseException, attempt: int, backoff: float) -> float:
    """Seconds to wait before try ``attempt + 2``: ``backoff * 2**attempt`` (capped, with jitter) or the
    server's Retry-After when longer.

    Example:
        >>> retry_delay(TimeoutError(), 0, 0.0)
        0.0
        >>> 2.0 <= retry_delay(TimeoutError(), 2, 1.0) <= 4.0
        True
    """
    delay = min(backoff * 2**attempt, MAX_BACKOFF) * random.uniform(0.5, 1.0)
    asked = getattr(error, "retry_after_s", None)  # ResourceExhaustedResponse
    if asked is None and isinstance(error, UnexpectedResponse) and error.headers is not None:
        asked = error.headers.get("retry-after")
    try:
        return max(delay, float(asked)) if asked is not None else delay
    except (TypeError, ValueError):  # an HTTP date: keep our own delay
        return delay


def send_with_retries(
    send: Callable[[T], object],
    batch: T,
    *,
    retries: int,
    backoff: float,
    on_retry: Callable[[BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """``send(batch)``, sent again up to ``retries`` times after transient errors; others raise at once."""
    attempt = 0
    while True:
        try:
            send(batch)
            return
        except Exception as error:
            if attempt >= retries or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry(error)
            sleep(retry_delay(error, attempt, backoff))
            attempt += 1


def upload(
    batches: Iterable[list[T]],
    send: Callable[[list[T]], object],
    *,
    parallel: int = 4,
    retries: int = 0,
    backoff: float = 0.5,
    progress: Callable[[int], None] | None = None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> int:
    """Send every batch (``parallel`` at once), each retried as :func:`send_with_retries` does; return how
    many retries it took (``on_retry(error)`` hears of each one as it happens, in a worker's thread).

    ``progress(n)`` is called in the caller's thread with each finished batch's size. The first failure
    stops the upload: batches not yet started are dropped, running ones finish, and it is raised.
    At most ``2 * parallel`` batches are taken from ``batches`` ahead of the ones finished.
    """
    retried = 0
    lock = threading.Lock()

    def count(error: BaseException) -> None:
        nonlocal retried
        with lock:
            retried += 1
        if on_retry is not None:
            on_retry(error)

    def one(batch: list[T]) -> None:
        send_with_retries(send, batch, retries=retries, backoff=backoff, on_retry=count)

    if parallel <= 1:
        for batch in batches:
            one(batch)
            if progress is not None:
                progress(len(batch))
        return retried
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sparsefit-upsert") as pool:
        sizes: dict[Future[None], int] = {}

        def finish(block: bool) -> None:
            done, _ = wait(sizes, return_when=FIRST_COMPLETED) if block else (
                [f for f in sizes if f.done()], None)
            for future in done:
                size = sizes.pop(future)
                future.result()  # raises the batch's error
                if progress is not None:
                    progress(size)

        try:
            for batch in batches:
                while len(sizes) >= 2 * parallel:
                    finish(block=True)
                sizes[pool.submit(one, batch)] = len(batch)
                finish(block=False)
            while sizes:
                finish(block=True)
        except BaseException:
            for future in sizes:
                future.cancel()
            raise
    return retried
