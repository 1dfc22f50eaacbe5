"""A data file's bytes, as read from disk or decompressed (.gz, .bz2, .xz) as a stream under a cap.

Why a cap: gzip reaches ~1000:1, so a small upload can expand to gigabytes; the bytes are counted as
they leave the decompressor and reading stops once past ``max_decompressed_bytes``. Parquet's own
compression is capped by the Parquet reader with :func:`too_large`.

Example:
    >>> import gzip, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.csv.gz"
    >>> _ = path.write_bytes(gzip.compress(b"x" * 10000))
    >>> len(read_bytes(path, None))
    10000
    >>> read_bytes(path, 100)
    Traceback (most recent call last):
    sparsefit.errors.SparsefitError: ...: decompressed size exceeds the 100 bytes limit. Fix: ...
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sparsefit.errors import SparsefitError

# Default cap on what a .gz/.bz2/.xz file may expand to. gzip reaches ~1000:1, so a 4 MB upload can hold
# 4 GB, and loading needs ~13x the text in RAM (one Python string per cell: a 36 MB CSV peaks at +465 MB
# RSS). 512 MiB of text (~1.5 million products with descriptions, ~30x Home Depot's catalog) thus stays
# near 7 GB, and the reported 1 GB-inside-4 MB bomb is refused. Callers with more memory pass
# max_decompressed_bytes (None turns the cap off).
DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1024**2
_CHUNK = 1024**2  # bytes pulled from a decompressor at a time
COMPRESSIONS: dict[str, Callable[[Path], IO[bytes]]] = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}
_STREAM_OPENERS: dict[str, Callable[..., IO[bytes]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def read_bytes(path: Path, max_decompressed_bytes: int | None) -> bytes | bytearray:
    with read_errors(path):
        open_compressed = COMPRESSIONS.get(path.suffix.lower())
        if open_compressed is None:
            return path.read_bytes()
        return _decompress(open_compressed, path, max_decompressed_bytes)


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Reading or decompressing ``path`` fails as one line that says why (wrap only the reads in it)."""
    try:
        yield
    except (EOFError, ValueError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise SparsefitError(f"the {path.suffix} file does not decompress ({exc})", file=path,
                             hint="compress it again, or pass the uncompressed file") from None
    except PermissionError:
        raise SparsefitError("permission denied: the file can't be read", file=path,
                             hint="make it readable (e.g. chmod +r) or copy it somewhere you can read") from None
    except OSError as exc:
        raise SparsefitError(f"can't read the file: {exc.strerror or exc}", file=path,
                             hint="check that the file is complete and accessible") from None


def open_stream(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """``path`` opened for reading a block at a time: (the bytes, decompressed as they are read; the file
    on disk, whose position tells how far in the reading is). Memory stays at one block whatever the file
    expands to, so no decompression cap applies. Close the second."""
    with read_errors(path):
        raw = path.open("rb")
        opener = _STREAM_OPENERS.get(path.suffix.lower())
        return (opener(raw, "rb") if opener is not None else raw), raw


def check_limit(limit: int | None) -> None:
    """A wrong cap is the caller's mistake: say so up front, not only when a compressed file comes along."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise SparsefitError(
            f"max_decompressed_bytes must be a whole number of bytes (0 or more) or None, not {limit!r}",
            hint="pass e.g. max_decompressed_bytes=1024**3 (1 GiB), or None for no limit",
        )


def _decompress(open_compressed: Callable[[Path], IO[bytes]], path: Path, limit: int | None) -> bytearray:
    """The decompressed bytes, read a chunk at a time and counted, stopping once past ``limit``.

    Memory stays at most ``limit`` plus one chunk whatever the file expands to (a bomb never gets
    decompressed in full).
    """
    out = bytearray()
    with open_compressed(path) as stream:
        while chunk := stream.read(_CHUNK if limit is None else min(_CHUNK, limit + 1 - len(out))):
            out += chunk
            if limit is not None and len(out) > limit:
                raise too_large(path, limit)
    return out


def too_large(path: Path, limit: int) -> SparsefitError:
    return SparsefitError(
        f"decompressed size exceeds the {_size(limit)} limit", file=path,
        hint="decompress it yourself and pass the plain file, or raise SPARSEFIT_MAX_DECOMPRESSED_MB "
        "(max_decompressed_bytes= in Python)",
    )


def _size(n: int) -> str:
    """A byte count for messages: whole mebibytes as MB, else bytes."""
    return f"{n // 1024**2:,} MB" if n and n % 1024**2 == 0 else f"{n:,} bytes"
