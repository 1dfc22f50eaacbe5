"""Work done one step behind the caller, on one thread, in order: the caller prepares step n+1 while step n runs.

Why: `sparsefit index` encodes a chunk on the main thread (torch releases the GIL) while the previous chunk
is upserted; the engine's upserts no longer leave a core idle. At most one step is in flight, steps finish
in the order given, and a step's error is raised in the caller at the next :meth:`OneAhead.submit` or
:meth:`OneAhead.wait`. On the way out (an error, Ctrl-C, even a second one) the step in flight is finished
before the block ends, so the caller can close what the step writes to.

Example:
    >>> done = []
    >>> with OneAhead("example") as ahead:
    ...     for n in range(3):
    ...         ahead.submit(done.append, n)
    ...     ahead.wait()
    >>> done
    [0, 1, 2]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class OneAhead:
    """One worker thread running the submitted steps in order, at most one at a time."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sparsefit-{name}")
        self._pending: Future[Any] | None = None

    def submit(self, step: Callable[..., Any], *args: Any) -> None:
        """Run ``step(*args)`` once the step before it has finished (its error is raised here)."""
        self.wait()
        self._pending = self._executor.submit(step, *args)

    def wait(self) -> None:
        """Until the step in flight has finished; its error, if any, is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> OneAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if kind is not None:  # the error on its way is the one to show; the step in flight still finishes
            with contextlib.suppress(Exception, KeyboardInterrupt):
                self.wait()
        while True:  # a second Ctrl-C must not end the block while the step still runs
            try:
                self._executor.shutdown(wait=True)
                break
            except KeyboardInterrupt:
                continue
