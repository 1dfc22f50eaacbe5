"""Files written so that a crash never leaves a half-written one: text, JSON, whole folders.

Why one module: every result a run keeps (settings, splits, metrics, models, index sidecars) goes
through these few helpers, so "atomic" means the same thing everywhere.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(folder / "state.json", {"done": ["split"]})
    >>> read_json(folder / "state.json")
    {'done': ['split']}
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sparsefit.errors import SparsefitError


def replace_file(path: Path, write: Callable[[Path], None], *, suffix: str = ".tmp") -> None:
    """Have ``write`` fill a temporary file beside ``path`` (flushed to disk), then rename it onto ``path``:
    readers see the old file or the complete new one. ``suffix`` ends the temporary name (``np.save``
    and ``save_npz`` want their own). On failure nothing is left behind and the error is one line.
    """
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(handle)
        write(Path(temporary))
        with open(temporary, "rb+") as stream:
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
    except BaseException:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a half-written file."""
    replace_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


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
