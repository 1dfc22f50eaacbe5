"""A text file's bytes decoded to text (UTF-8 with or without BOM by default, or the user's ``--encoding``).

Why its own step: a bad byte is reported with its line and byte offset (and a lone surrogate, which
only odd codecs produce, is refused here), so the user can find it in the file.

Example:
    >>> from pathlib import Path
    >>> decode("\\ufeffa,b\\n".encode("utf-8"), Path("t.csv"), None, "csv")
    'a,b\\n'
    >>> decode(b"a\\nb\\xff", Path("t.csv"), None, "csv")
    Traceback (most recent call last):
    sparsefit.errors.SparsefitError: t.csv, row 2: byte 0xff at byte offset 3 is not valid UTF-8. Fix: ...
"""

from __future__ import annotations

import re
from pathlib import Path

from sparsefit.errors import SparsefitError

SURROGATE = re.compile("[\ud800-\udfff]")


def decode(data: bytes | bytearray, path: Path, encoding: str | None, fmt: str) -> str:
    """The text of a file's bytes, without BOM; ``fmt`` "json" puts the line in the message, not a row."""
    name = encoding or "utf-8-sig"
    try:
        text = data.decode(name)
    except LookupError:
        raise unknown_encoding(path, encoding) from None
    except UnicodeDecodeError as exc:
        # utf-8-sig reports positions in the data after its BOM: shift them back to file offsets
        offset = exc.start + len(data) - len(exc.object)
        raise not_decodable(exc.object[exc.start], offset, data.count(b"\n", 0, offset) + 1, path, encoding, fmt) from None
    except UnicodeError as exc:  # codecs such as idna or punycode fail without a position
        raise codec_failed(path, encoding, exc) from None
    if encoding is not None:
        check_surrogates(text, path, encoding, fmt)
    return text.removeprefix("\ufeff")


def unknown_encoding(path: Path, encoding: str | None) -> SparsefitError:
    return SparsefitError(f"unknown encoding '{encoding}'", file=path,
                          hint="pass a Python codec name such as utf-8, latin-1 or cp1252 to --encoding")


def codec_failed(path: Path, encoding: str | None, exc: Exception) -> SparsefitError:
    return SparsefitError(f"can't decode the file as {encoding} ({exc})", file=path,
                          hint="check --encoding (the file may be UTF-8: omit it)")


def not_decodable(byte: int, offset: int, line: int, path: Path, encoding: str | None, fmt: str) -> SparsefitError:
    """The error for byte ``byte`` at file offset ``offset`` (on ``line``) that ``encoding`` cannot decode."""
    shown = "UTF-8" if encoding is None else encoding
    row = None if fmt == "json" else line
    where = f"line {line}, " if row is None else ""
    hint = ("re-save the file as UTF-8 or pass --encoding latin-1" if encoding is None
            else "check --encoding (the file may be UTF-8: omit it)")
    return SparsefitError(f"{where}byte 0x{byte:02x} at byte offset {offset} is not valid {shown}",
                          file=path, row=row, hint=hint)


def check_surrogates(text: str, path: Path, encoding: str, fmt: str, *, lines_before: int = 0) -> None:
    """Refuse a lone surrogate, which only odd codecs (unicode_escape...) make; ``lines_before``: the lines
    of the file before ``text`` (a file decoded a piece at a time)."""
    if (lone := SURROGATE.search(text)) is None:
        return
    line = lines_before + text.count("\n", 0, lone.start()) + 1
    row = None if fmt == "json" else line
    raise SparsefitError(
        f"{'' if row else f'line {line}, '}decoding as {encoding} gives a lone surrogate "
        f"(U+{ord(lone.group()):04X}), which is not valid text", file=path, row=row,
        hint="pass the file's real encoding to --encoding (e.g. utf-8, latin-1, cp1252)",
    )
