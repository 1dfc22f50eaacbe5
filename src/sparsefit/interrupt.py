"""Ctrl-C that is never lost.

Python runs a SIGINT handler at the next bytecode of the main thread, whatever code that is. When it is
a ``__del__`` run by the garbage collector (the ``regex`` package's pattern objects have one, and
transformers compiles such patterns while a model loads), the KeyboardInterrupt raised there is
"ignored" (with a traceback on stderr) and a long run goes on as if nothing happened. The handler here
also records the request; :func:`check`, called at every stage boundary, progress step and training
step, raises it again, and the ignored one is not printed.

Example:
    >>> import signal
    >>> previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as at a terminal)
    >>> with catching_ctrl_c():
    ...     signal.getsignal(signal.SIGINT) is _on_sigint
    True
    >>> check()  # nothing requested: returns
    >>> _ = signal.signal(signal.SIGINT, previous)
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = False


def _on_sigint(signum: int, frame: object) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`catching_ctrl_c` began, even when the
    first one was swallowed."""
    if _requested:
        raise KeyboardInterrupt


@contextmanager
def catching_ctrl_c() -> Iterator[None]:
    """Install the recording handler for the duration (main thread only, and only where SIGINT has
    Python's default handler: an ignored SIGINT stays ignored)."""
    global _requested
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    previous_hook = sys.unraisablehook

    def unraisable(info: sys.UnraisableHookArgs) -> None:
        if not (_requested and info.exc_type is KeyboardInterrupt):
            previous_hook(info)

    _requested = False
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.unraisablehook = previous_hook
        _requested = False
