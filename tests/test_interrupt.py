"""Ctrl-C is never lost: one swallowed by a finaliser stops the work at the next check."""

from __future__ import annotations

import gc
import os
import signal

import pytest

from sparsefit.interrupt import catching_ctrl_c, check


class _Finalised:
    """Sends Ctrl-C to this process from its finaliser, so that the handler runs inside ``__del__``
    (where Python ignores the KeyboardInterrupt, as it does in the regex package's finalisers)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # bytecode for the interpreter to run the handler on
            pass


@pytest.fixture
def at_a_terminal():
    """SIGINT handled as at a terminal, also where the tests run with it ignored (a background CI job)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_swallowed_by_a_finaliser_is_raised_at_the_next_check(at_a_terminal, monkeypatch):
    printed = []
    monkeypatch.setattr("sys.unraisablehook", printed.append)  # what Python would print as "Exception ignored"
    with catching_ctrl_c():
        obj = _Finalised()
        del obj  # the KeyboardInterrupt raised in __del__ does not reach us ...
        gc.collect()
        with pytest.raises(KeyboardInterrupt):
            check()  # ... but the next check raises it
        assert printed == []  # and the ignored one is not printed
    check()  # outside: the request was forgotten with the handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with catching_ctrl_c():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
