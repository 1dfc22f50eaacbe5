"""A table file read a chunk of records at a time (CSV/TSV, JSON Lines, Parquet), for catalogs of millions.

Why its own reader: :func:`~sparsefit.data.readers.read_table` holds the whole file (its bytes, its text
and a Python string per cell: ~13x the file in RAM), which a catalog of millions of products cannot
afford. Here the file is decoded a block at a time and parsed by the very same code (the strict CSV
parser, the JSON Lines parser, the Parquet column conversion), so each chunk is the :class:`Table`
that ``read_table`` would hold for those records: the same values, row numbers and error messages.

What differs from reading the whole file:

* Types are inferred per chunk for delimited text, so a column's type is fixed by the first chunk
  that holds values in it: later chunks are converted to it (whole numbers in a decimal column
  become decimals), and a value that does not fit stays text; :attr:`TableStream.type_notes` says
  where that happened.
* JSON Lines chunks get the columns of earlier chunks they lack (as missing values).
* A ``.json`` file holding one JSON list is refused (it can only be parsed whole): convert it to
  JSON Lines. A ``.json`` file that is JSON Lines is read as such.
* A compressed file is decompressed as it is read, so no decompression cap applies (memory stays
  at one block); a compressed Parquet file (``.parquet.gz``) is refused: Parquet needs to seek.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = path.write_text("sku,title,price\\n1,Mug,4.5\\n2,Cup,3\\n3,Jug,2\\n")
    >>> with stream_table(path, chunk_size=2) as stream:
    ...     [(t.rows.tolist(), t.typed()["price"].tolist()) for t in stream]
    [([2, 3], [4.5, 3.0]), ([4], [2.0])]
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Self

import pandas as pd

from sparsefit.data.decoding import (
    check_surrogates,
    codec_failed,
    not_decodable,
    unknown_encoding,
)
from sparsefit.data.delimited import iter_delimited
from sparsefit.data.json_records import SURROGATE_ESCAPE, json_lines, records_table
from sparsefit.data.raw import COMPRESSIONS, open_stream, read_errors
from sparsefit.data.readers import _format_of
from sparsefit.data.table import Table, infer_column
from sparsefit.errors import SparsefitError

BLOCK_BYTES = 1024**2  # bytes read (and decoded) at a time


class TableStream:
    """The chunks of a table file, in order; use it as a context manager (it holds the file open).

    ``fraction()`` tells how far into the file the chunks read so far reach (0 to 1), for a progress
    estimate; ``records`` is the number of records when the file says so up front (Parquet), else None.
    """

    def __init__(self, path: str | Path, *, chunk_size: int, encoding: str | None = None) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise SparsefitError(f"the chunk size must be a whole number of records (1 or more), not {chunk_size!r}",
                                 hint="pass e.g. --chunk-size 4096")
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.encoding = encoding
        self.format = _format_of(self.path)
        self.records: int | None = None
        self.type_notes: list[str] = []  # columns whose later values did not fit the type the first chunk fixed
        self._kinds: dict[str, str] = {}
        self._columns: list[str] = []
        self._files: list[IO[bytes]] = []
        self._size = max(self.path.stat().st_size, 1)
        self._position = lambda: 0
        if self.format == "parquet":
            self._parquet = self._open_parquet()

    # -- reading --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Table]:
        if self.format == "parquet":
            yield from self._parquet_chunks()
            return
        pieces = self._pieces()
        if self.format in ("json", "jsonl"):
            yield from self._json_chunks(pieces)
        else:
            first = next(pieces)
            yield from (self._typed(t) for t in iter_delimited(
                _lines(first, pieces), first.split("\n", 1)[0], self.path, self.format, self.chunk_size))

    def fraction(self) -> float:
        """How far into the file reading has got, 0 to 1 (by records for Parquet, else by bytes on disk)."""
        return min(1.0, self._position() / self._size)

    # -- text: decoded a block at a time --------------------------------------------------
    def _pieces(self) -> Iterator[str]:
        """The decoded text in pieces that each end with a line break (the last one may not); the first
        holds a non-blank character ("file is empty" otherwise, as for a whole file)."""
        stream, raw = open_stream(self.path)
        self._files += [stream, raw] if stream is not raw else [raw]
        self._position = raw.tell
        try:
            decoder = codecs.getincrementaldecoder(self.encoding or "utf-8-sig")("strict")
        except LookupError:
            raise unknown_encoding(self.path, self.encoding) from None
        carry, fed, newlines, lines_before, started = "", 0, 0, 0, False
        while True:
            with read_errors(self.path):
                block = stream.read(BLOCK_BYTES)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                offset = fed + len(block) - len(exc.object) + exc.start
                line = newlines + block.count(b"\n", 0, max(0, offset - fed)) + 1
                raise not_decodable(exc.object[exc.start], offset, line, self.path, self.encoding, self.format) from None
            except UnicodeError as exc:
                raise codec_failed(self.path, self.encoding, exc) from None
            fed, newlines = fed + len(block), newlines + block.count(b"\n")
            text = carry + text
            if not started:
                text = text.removeprefix("\ufeff")
                if not text.strip() and block:
                    carry = text
                    continue  # all blank so far: decide on the next block
                if not text.strip():
                    raise SparsefitError("file is empty", file=self.path,
                                         hint="export the table again, with a header row and data rows")
                started = True
            cut = len(text) if not block else text.rfind("\n") + 1
            piece, carry = text[:cut], text[cut:]
            if piece:
                if self.encoding is not None:
                    check_surrogates(piece, self.path, self.encoding, self.format, lines_before=lines_before)
                lines_before += piece.count("\n")
                yield piece
            if not block:
                return

    # -- JSON Lines -----------------------------------------------------------------------
    def _json_chunks(self, pieces: Iterator[str]) -> Iterator[Table]:
        first = next(pieces)
        if self.format == "json" and first.lstrip().startswith("["):
            raise SparsefitError(
                "a JSON list can only be read whole, so it is not streamed", file=self.path,
                hint=f"convert it to JSON Lines (one object per line), e.g. jq -c '.[]' {self.path.name} > "
                     f"{self.path.stem}.jsonl, and index that",
            )
        numbered: list[tuple[int, str]] = []
        escapes = False
        number = 0
        for piece in _chain(first, pieces):
            lines = piece.split("\n")
            if piece.endswith("\n"):
                lines.pop()
            for line in lines:
                number += 1
                if not line.strip():
                    continue
                numbered.append((number, line))
                escapes = escapes or SURROGATE_ESCAPE.search(line) is not None
                if len(numbered) >= self.chunk_size:
                    yield self._json_table(numbered, escapes)
                    numbered, escapes = [], False
        if numbered or not self._columns:
            yield self._json_table(numbered, escapes)  # no record at all: records_table says so

    def _json_table(self, numbered: list[tuple[int, str]], escapes: bool) -> Table:
        records, rows = json_lines(numbered, self.path)
        table = records_table(records, rows, self.path, "jsonl", escapes)
        self._columns += [c for c in table.columns if c not in self._columns]
        missing = [c for c in self._columns if c not in table.columns]
        if missing:  # keys that earlier chunks had: missing values here, as in a whole file
            typed = table.source_values
            assert typed is not None  # JSON keeps its own types
            for column in missing:
                table.frame[column] = ""
                typed[column] = pd.Series(pd.NA, index=typed.index, dtype="object")
            table.frame = table.frame[self._columns]
            table.source_values = typed[self._columns]
        return table

    # -- Parquet --------------------------------------------------------------------------
    def _open_parquet(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from sparsefit.data.parquet import check_columns, unreadable

        if self.path.suffix.lower() in COMPRESSIONS:
            raise SparsefitError("a compressed Parquet file can't be read in chunks", file=self.path,
                                 hint="decompress it first (Parquet compresses its columns itself)")
        if self.path.stat().st_size == 0:
            raise SparsefitError("file is empty", file=self.path, hint="write the Parquet file again")
        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise unreadable(self.path, exc) from None
        self.records = parquet.metadata.num_rows
        check_columns(parquet.schema_arrow.names, self.records, self.path)
        return parquet

    def _parquet_chunks(self) -> Iterator[Table]:
        import pyarrow as pa

        from sparsefit.data.parquet import arrow_table, unreadable

        done = 0
        self._size = max(self.records or 0, 1)
        self._position = lambda: done
        batches = self._parquet.iter_batches(batch_size=self.chunk_size)
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    return
                table = pa.Table.from_batches([batch])
                table.validate(full=True)  # e.g. text that is not UTF-8 would otherwise fail later
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise unreadable(self.path, exc) from None
            yield arrow_table(table, self.path, first_row=done + 1)
            done += table.num_rows

    # -- types of delimited text ------------------------------------------------------------
    def _typed(self, table: Table) -> Table:
        """The chunk with each column in the type the first chunk holding values in it fixed."""
        out = {}
        for name in table.columns:
            text = table.frame[name]
            inferred = infer_column(text)
            if not inferred.notna().any():
                out[name] = inferred
                continue
            kind = self._kinds.setdefault(name, str(inferred.dtype))
            have = str(inferred.dtype)
            if have == kind or (kind == "Int64" and have == "Float64"):  # numbers either way
                out[name] = inferred
            elif kind == "Float64" and have == "Int64":
                out[name] = inferred.astype("Float64")
            elif kind == "object":  # a text column: numbers in it stay text, as in a whole file
                out[name] = text.astype(object).where(text.str.strip() != "", None)
            else:
                out[name] = self._coerce(table, name, kind)
        table.source_values = pd.DataFrame(out, index=table.frame.index)
        return table

    def _coerce(self, table: Table, name: str, kind: str) -> pd.Series:
        """Each value of column ``name`` in type ``kind`` where it fits, else its text (noted once)."""
        values: list[Any] = []
        for i, raw in enumerate(table.frame[name].tolist()):
            one = infer_column(pd.Series([raw]))
            fits = str(one.dtype) == kind or (kind == "Float64" and str(one.dtype) == "Int64")
            value = one.iloc[0]
            if not fits and value is not None and value is not pd.NA:
                if not any(note.startswith(f"column '{name}' ") for note in self.type_notes):
                    self.type_notes.append(
                        f"column '{name}' holds {_KIND_NAMES.get(kind, kind)} in the first rows, but row "
                        f"{int(table.rows[i])} holds {raw.strip()!r}: such values stay text in the payload")
                values.append(raw.strip())
            else:
                values.append(None if value is pd.NA else (float(value) if kind == "Float64" else value))
        return pd.Series(values, index=table.frame.index, dtype=object)

    # -- closing --------------------------------------------------------------------------
    def close(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_KIND_NAMES = {"Int64": "whole numbers", "Float64": "numbers", "boolean": "true/false values"}


def stream_table(path: str | Path, *, chunk_size: int, encoding: str | None = None) -> TableStream:
    """The chunks of at most ``chunk_size`` records of a CSV/TSV, JSON Lines or Parquet file (optionally
    .gz/.bz2/.xz for text), as :class:`Table` objects; see the module's notes for what differs from
    :func:`~sparsefit.data.readers.read_table`."""
    return TableStream(path, chunk_size=chunk_size, encoding=encoding)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _lines(first: str, rest: Iterator[str]) -> Iterator[str]:
    """The lines of the pieces, line endings kept and only \\n, \\r and \\r\\n ending a line (as csv wants)."""
    for piece in _chain(first, rest):
        yield from io.StringIO(piece, newline="")


__all__ = ["TableStream", "stream_table"]
