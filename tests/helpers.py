"""Helpers shared by the test modules (one of each): a free port, the error a call raises, the CLI run in
this process or as a child process, and calls started in several threads at the same moment."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sparsefit.errors import SparsefitError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def error_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> SparsefitError:
    """The SparsefitError that ``call(*args, **kwargs)`` raises (the test fails if it raises none)."""
    with pytest.raises(SparsefitError) as caught:
        call(*args, **kwargs)
    return caught.value


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``sparsefit ARGV`` in this process (``sparsefit.cli.main``): (exit code, stdout, stderr)."""
    from sparsefit.cli import main

    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


CLI = [sys.executable, "-m", "sparsefit.cli"]  # the command line of `sparsefit` as a child process


def cli_process(*argv: str, timeout: float = 300, **options: Any) -> subprocess.CompletedProcess:
    """Run ``python -m sparsefit.cli ARGV`` as a child process (text output captured); tests using it are slow."""
    return subprocess.run([*CLI, *map(str, argv)], capture_output=True, text=True, timeout=timeout, **options)


def together(count: int, call: Callable[[int], Any], timeout: float = 60) -> list[Any]:
    """Run ``call(i)`` in ``count`` threads released at the same moment; what each returned or raised, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a thread still runs after {timeout} s"
    return results
