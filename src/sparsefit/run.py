"""The run folder: atomic writes and named output folders.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(folder / "state.json", {"done": ["split"]})
    >>> read_json(folder / "state.json")
    {'done': ['split']}
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sparsefit.errors import SparsefitError


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a half-written file."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)  # no half-written leftovers
        raise SparsefitError(
            f"cannot write the file ({exc.strerror or exc})",
            file=path,
            hint="choose an output folder you can write to (--output) and check free disk space",
        ) from None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`; a clear error if it is damaged."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparsefitError("file not found", file=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SparsefitError(f"file is damaged ({exc})", file=path, hint="delete it and run again") from None


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without error it takes
    ``target``'s place in one atomic swap, so a reader sees the old folder or the complete new one,
    never a half-written one nor none (a model being saved or exported while ``serve`` loads it). On
    error the temporary folder is removed and ``target`` is left as it was.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "model"
        >>> with atomic_folder(target) as tmp:
        ...     _ = (tmp / "weights.bin").write_text("w")
        >>> sorted(p.name for p in target.iterdir())
        ['weights.bin']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists() and exchange_paths(temporary, target):  # one step: the new folder in, the old one out
        shutil.rmtree(temporary, ignore_errors=True)
        return
    old = None
    if target.exists():  # where the system cannot swap: two renames, with a moment of no folder between them
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(temporary, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or file system cannot, so the caller falls back to renames."""
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def make_folder(path: Path) -> Path:
    """Create the output folder ``path`` (and parents), or a clear error saying why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SparsefitError("the output folder is an existing file", file=path,
                             hint="pass --output with a folder path (new or existing folder)") from None
    except OSError as exc:
        raise SparsefitError(f"cannot create the output folder ({exc.strerror or exc})", file=path,
                             hint="choose an output folder you can write to (--output) and check free disk space") from None
    return path


def new_run_folder(kind: str, root: Path = Path("runs")) -> Path:
    """A fresh folder ``runs/<kind>-<UTC time>`` (suffixed if it exists)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = root / f"{kind}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = root / f"{kind}-{stamp}-{suffix}"
    return folder


class RunState:
    """The finished stages of a run folder, kept in state.json and written atomically after each stage.

    Example:
        >>> import tempfile, pathlib
        >>> state = RunState(pathlib.Path(tempfile.mkdtemp()))
        >>> state.mark("round-0/train"); state.done("round-0/train")
        True
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "state.json"
        self.stages: list[str] = _finished_stages(self.path)

    def done(self, stage: str) -> bool:
        return stage in self.stages

    def forget(self, stages: list[str]) -> None:
        """Mark ``stages`` as not done (their work will be redone)."""
        self.stages = [s for s in self.stages if s not in set(stages)]
        write_json(self.path, {"done": self.stages})

    def mark(self, stage: str) -> None:
        if stage not in self.stages:
            self.stages.append(stage)
        write_json(self.path, {"done": self.stages})


def _finished_stages(path: Path) -> list[str]:
    if not path.is_file():
        return []
    data = read_json(path)
    done = data.get("done") if isinstance(data, dict) else None
    if not isinstance(done, list) or not all(isinstance(stage, str) for stage in done):
        raise SparsefitError("file is damaged (no list of finished stages)", file=path,
                             hint="delete it and resume the run: its stages are then redone")
    return done


def finished_stages(folder: Path) -> list[str]:
    """The run's finished stages for a reader that must not fail (a listing, a status): [] when damaged."""
    try:
        return RunState(folder).stages
    except SparsefitError:
        return []


def exported(folder: Path) -> bool:
    """Whether the run in ``folder`` has exported its model: the one test of a finished run."""
    return "export" in finished_stages(folder)
