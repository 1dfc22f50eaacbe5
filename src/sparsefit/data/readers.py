"""Read a table file (CSV, TSV, JSON, JSON Lines, Parquet) into text columns plus source row numbers.

Every value is kept as the exact text in the file (``"00123"`` stays ``"00123"``; a missing value is
``""``), so ids are never mangled. A typed copy (ints, floats, bools inferred per column) is available
for payloads. ``Table.rows`` holds, per record, the number to show in errors: the spreadsheet row for
delimited files (header = row 1), the line for JSON Lines, the 1-based record for a JSON list or Parquet.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.csv"
    >>> _ = path.write_text("sku,title,price\\n00123,Red mug,4\\n")
    >>> table = read_table(path)
    >>> table.frame["sku"].tolist(), table.rows.tolist(), table.typed()["price"].tolist()
    (['00123'], [2], [4])
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsefit.data.raw import COMPRESSIONS, DEFAULT_MAX_DECOMPRESSED_BYTES, check_limit, read_bytes, too_large
from sparsefit.errors import SparsefitError

FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "txt",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
}
SUPPORTED = "CSV, TSV, JSON, JSON Lines (.jsonl/.ndjson) or Parquet (optionally .gz, .bz2 or .xz compressed)"
_INT_RE = r"[+-]?(?:0|[1-9][0-9]*)"
_FLOAT_RE = r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_MAX_SHOWN_COLUMNS = 25
_MAX_JSON_DEPTH = 64  # nesting deeper than this is no catalog, and would overflow recursive code downstream
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass
class Table:
    """A table read from a file: every value as text, with the source row number of each record."""

    frame: pd.DataFrame  # every column as text; a missing value is ""
    rows: np.ndarray  # int64: the row (or line/record) number of each record, for error messages
    path: Path
    format: str  # "csv" | "tsv" | "txt" | "json" | "jsonl" | "parquet"
    nested: dict[str, str] = field(default_factory=dict)  # column -> "list" | "struct" | "binary"
    source_values: pd.DataFrame | None = field(default=None, repr=False)  # typed values (JSON, Parquet)
    _typed: pd.DataFrame | None = field(default=None, repr=False, init=False)

    @property
    def columns(self) -> list[str]:
        """Column names in file order."""
        return list(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def typed(self) -> pd.DataFrame:
        """A copy with per-column types: ints, floats and bools inferred, missing values as NA."""
        if self._typed is None:
            if self.source_values is not None:
                self._typed = self.source_values
            else:
                self._typed = pd.DataFrame({name: infer_column(self.frame[name]) for name in self.columns})
        return self._typed

    def values(self, column: str, *, use: str) -> list[str]:
        """The stripped text of ``column``; errors if it holds nested values that can't serve as ``use``.

        ``use`` is "id" or "text": lists of plain values may be text (joined with ", "), never ids.
        """
        kind = self.nested.get(column)
        if kind is not None and not (use == "text" and kind == "list"):
            what = {"list": "lists", "struct": "nested objects", "binary": "binary data"}[kind]
            raise SparsefitError(
                f"column holds {what}, so it can't be used as {'an id' if use == 'id' else 'text'}",
                file=self.path, column=column, hint="choose a column of plain values (it stays in the payload)",
            )
        return [value.strip() for value in self.frame[column].tolist()]


def read_table(
    path: str | Path, *, encoding: str | None = None,
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> Table:
    """Read a CSV/TSV/JSON/JSONL/Parquet file; every problem is a :class:`SparsefitError`.

    A .gz/.bz2/.xz file is decompressed as a stream and rejected once it expands past
    ``max_decompressed_bytes`` (None: no cap), so a small compressed upload can't exhaust memory.

    Example:
        >>> read_table("no/such/file.csv")
        Traceback (most recent call last):
        sparsefit.errors.SparsefitError: no/such/file.csv: file not found. Fix: check the path (relative paths start from the current folder)
    """
    path = Path(path)
    check_limit(max_decompressed_bytes)
    fmt = _format_of(path)
    data = read_bytes(path, max_decompressed_bytes)
    if fmt == "parquet":
        return _read_parquet(path, data, max_decompressed_bytes)
    if not data or data.isspace():  # same test as "not data.strip()", without copying the data
        raise SparsefitError("file is empty", file=path, hint="export the table again, with a header row and data rows")
    text = _decode(data, path, encoding, fmt)
    if fmt in ("json", "jsonl"):
        return _read_json(text, path, fmt)
    return _read_delimited(text, path, fmt)


def normalise_name(name: str) -> str:
    """Column name for matching: case-folded, spaces and dashes as underscores.

    Example:
        >>> normalise_name(" Product-UID "), normalise_name("category hierarchy")
        ('product_uid', 'category_hierarchy')
    """
    return re.sub(r"[\s\-]+", "_", name.strip().casefold())


def show_columns(columns: list[str]) -> str:
    """Columns quoted for a message, shortened when there are many."""
    shown = ", ".join(f"'{c}'" for c in columns[:_MAX_SHOWN_COLUMNS])
    more = len(columns) - _MAX_SHOWN_COLUMNS
    return shown + (f" (and {more} more)" if more > 0 else "")


def resolve_column(table: Table, name: str, *, what: str, flag: str) -> str:
    """The column the user named: exact, else matched ignoring case, spaces and dashes."""
    if name in table.columns:
        return name
    matches = [c for c in table.columns if normalise_name(c) == normalise_name(name)]
    if len(matches) == 1:
        return matches[0]
    raise SparsefitError(
        f"{what} column '{name}' is not in the file; columns are {show_columns(table.columns)}",
        file=table.path, hint=f"pass {flag} with one of those columns",
    )


def detect_column(table: Table, candidates: tuple[str, ...], *, exclude: tuple[str, ...] = ()) -> str | None:
    """The first candidate name (in candidate order) present among the columns, or None."""
    by_name: dict[str, str] = {}
    for column in table.columns:
        if column not in exclude:
            by_name.setdefault(normalise_name(column), column)
    for candidate in candidates:
        if candidate in by_name:
            return by_name[candidate]
    return None


def infer_column(values: pd.Series) -> pd.Series:
    """Typed version of a text column: Int64, Float64 or boolean if every non-blank value fits, else text.

    Numbers with leading zeros ("00123") stay text, and so do numbers too large for a float ("1e999"),
    which would otherwise become infinity and drop out of the payload. Blank values become NA.

    Example:
        >>> infer_column(pd.Series(["1", "", "3"])).tolist()
        [1, <NA>, 3]
        >>> infer_column(pd.Series(["007", "8"])).tolist()
        ['007', '8']
    """
    stripped = values.str.strip()
    present = stripped != ""
    if not present.any():
        return pd.Series(pd.NA, index=values.index, dtype="object")
    filled = stripped[present]
    if filled.str.fullmatch(_INT_RE).all() and filled.str.len().max() <= 20:  # longer can't be an int64
        numbers = [int(v) for v in filled]
        if all(-(2**63) <= n < 2**63 for n in numbers):
            out = pd.Series(pd.NA, index=values.index, dtype="Int64")
            out[present] = numbers
            return out
    if filled.str.fullmatch(_FLOAT_RE).all():
        floats = [float(v) for v in filled]
        if all(math.isfinite(f) for f in floats):
            out = pd.Series(pd.NA, index=values.index, dtype="Float64")
            out[present] = floats
            return out
    lowered = filled.str.casefold()
    if lowered.isin(["true", "false"]).all():
        out = pd.Series(pd.NA, index=values.index, dtype="boolean")
        out[present] = (lowered == "true").tolist()
        return out
    return values.astype(object).where(present, None)


# -- files and bytes ------------------------------------------------------------------------------

# Suffix -> a reader that decompresses as a stream (pandas is not used for reading, so .zip is not accepted).

def _format_of(path: Path) -> str:
    if not path.exists():
        raise SparsefitError("file not found", file=path, hint="check the path (relative paths start from the current folder)")
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in FORMATS)[:5]
        hint = "pass a file inside it" + (f", e.g. {', '.join(inside)}" if inside else "")
        raise SparsefitError("is a folder, not a file", file=path, hint=hint)
    suffix = path.suffix.lower()
    if suffix in COMPRESSIONS:  # catalog.csv.gz: the format is the suffix before the compression's
        suffix = Path(path.stem).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise SparsefitError(
            f"unsupported file type '{path.suffix or '(no extension)'}'", file=path,
            hint=f"save it as {SUPPORTED}, with the matching extension",
        )
    return fmt


def _decode(data: bytes | bytearray, path: Path, encoding: str | None, fmt: str) -> str:
    name = encoding or "utf-8-sig"
    try:
        text = data.decode(name)
    except LookupError:
        raise SparsefitError(f"unknown encoding '{encoding}'", file=path,
                             hint="pass a Python codec name such as utf-8, latin-1 or cp1252 to --encoding") from None
    except UnicodeDecodeError as exc:
        # utf-8-sig reports positions in the data after its BOM: shift them back to file offsets
        offset = exc.start + len(data) - len(exc.object)
        line = data.count(b"\n", 0, offset) + 1
        shown = "UTF-8" if encoding is None else encoding
        row = None if fmt == "json" else line
        where = f"line {line}, " if row is None else ""
        hint = ("re-save the file as UTF-8 or pass --encoding latin-1" if encoding is None
                else "check --encoding (the file may be UTF-8: omit it)")
        raise SparsefitError(
            f"{where}byte 0x{exc.object[exc.start]:02x} at byte offset {offset} is not valid {shown}",
            file=path, row=row, hint=hint,
        ) from None
    except UnicodeError as exc:  # codecs such as idna or punycode fail without a position
        raise SparsefitError(f"can't decode the file as {encoding} ({exc})", file=path,
                             hint="check --encoding (the file may be UTF-8: omit it)") from None
    if encoding is not None and (lone := _SURROGATE.search(text)):  # only odd codecs (unicode_escape...) make these
        line = text.count("\n", 0, lone.start()) + 1
        row = None if fmt == "json" else line
        raise SparsefitError(
            f"{'' if row else f'line {line}, '}decoding as {encoding} gives a lone surrogate "
            f"(U+{ord(lone.group()):04X}), which is not valid text", file=path, row=row,
            hint="pass the file's real encoding to --encoding (e.g. utf-8, latin-1, cp1252)",
        )
    return text.removeprefix("\ufeff")


# -- delimited text -------------------------------------------------------------------------------

def _delimiter(header: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    if "," not in header and "\t" in header:
        return "\t"
    if "," not in header and ";" in header:
        return ";"
    return "\t" if fmt == "txt" and "\t" in header else ","


def _read_delimited(text: str, path: Path, fmt: str) -> Table:
    delimiter = _delimiter(text.split("\n", 1)[0], fmt)
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[list[str]] = []
    rows: list[int] = []
    row = 0
    try:
        for record in reader:
            row += 1
            if header is None:
                header = _header(record, path)
                continue
            if not any(value.strip() for value in record):
                continue  # a blank line carries no data
            records.append(_fit_record(record, len(header), row, path, delimiter, header))
            rows.append(row)
    except csv.Error as exc:
        raise SparsefitError(
            f"malformed {'CSV' if delimiter == ',' else 'delimited text'}: {exc}", file=path, row=row + 1,
            hint='wrap values containing the delimiter, quotes or line breaks in double quotes, doubling inner quotes ("")',
        ) from None
    if header is None:
        raise SparsefitError("file is empty", file=path, hint="export the table again, with a header row and data rows")
    if not records:
        raise SparsefitError("the file has a header but no rows", file=path, hint="add data rows below the header")
    frame = pd.DataFrame(records, columns=header, dtype=object).astype(str)
    return Table(frame=frame, rows=np.asarray(rows, dtype=np.int64), path=path, format=fmt)


def _header(record: list[str], path: Path) -> list[str]:
    if len(record) <= 1 and not "".join(record).strip():  # a blank line where the header should be
        raise SparsefitError("the first row, which should be the header, is blank", file=path, row=1,
                             hint="delete the blank line(s) above the header row")
    names = [name.strip().removeprefix("\ufeff").strip() or f"unnamed_{i + 1}" for i, name in enumerate(record)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SparsefitError("column name appears twice in the header", file=path, row=1, column=name,
                                 hint="rename one of the two columns")
        seen.add(name)
    return names


def _fit_record(record: list[str], width: int, row: int, path: Path, delimiter: str, header: list[str]) -> list[str]:
    if len(record) == width:
        return record
    if len(record) > width and not any(v.strip() for v in record[width:]):
        return record[:width]  # trailing empty fields (e.g. a trailing delimiter)
    shown = {",": "','", "\t": "a tab", ";": "';'"}[delimiter]
    raise SparsefitError(
        f"has {len(record)} fields but the header has {width} ({', '.join(header[:6])}{', …' if width > 6 else ''})",
        file=path, row=row, hint=f"quote values that contain {shown}, or fix that row so it has {width} values",
    )


# -- JSON and JSON Lines --------------------------------------------------------------------------

def _read_json(text: str, path: Path, fmt: str) -> Table:
    escapes = _SURROGATE_ESCAPE.search(text) is not None  # only then can a lone surrogate come out of the parser
    if fmt == "jsonl":
        records, rows = _json_lines(text, path)
    else:
        try:
            data = _loads(text)
        except json.JSONDecodeError as exc:
            if _looks_like_json_lines(text):
                records, rows = _json_lines(text, path)
                return _records_table(records, rows, path, "jsonl", escapes)
            raise SparsefitError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path,
                                 hint="fix the JSON syntax (a list of objects, or one object per line)") from None
        except RecursionError:
            raise _too_deep(path, None, None) from None
        records, rows = _json_list(data, path)
    return _records_table(records, rows, path, fmt, escapes)


def _loads(text: str) -> Any:
    """``json.loads``, except that integers too long for ``int()`` (over 4,300 digits) stay text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # "Exceeds the limit ... for integer string conversion"
        return json.loads(text, parse_int=_json_int)


def _json_int(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:
        return digits


def _too_deep(path: Path, row: int | None, column: str | None) -> SparsefitError:
    return SparsefitError(f"JSON nests lists or objects more than {_MAX_JSON_DEPTH} levels deep", file=path, row=row,
                          column=column, hint="flatten the nested values (a product's fields should be plain values)")


def _looks_like_json_lines(text: str) -> bool:
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(_loads(lines[0]), dict)
    except (ValueError, RecursionError):
        return False


def _json_list(data: Any, path: Path) -> tuple[list[dict], list[int]]:
    if not isinstance(data, list):
        hint = "save the records as a JSON list [{...}, {...}] or as JSON Lines (one object per line)"
        if isinstance(data, dict):
            lists = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
            if lists:
                hint = f"the records seem to be under \"{lists[0]}\": save that list by itself (e.g. jq '.{lists[0]}')"
        raise SparsefitError("JSON must be a list of objects or JSON Lines", file=path, hint=hint)
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise SparsefitError(f"record {number} is {_kind(record)}, not an object", file=path, row=number,
                                 hint="JSON must be a list of objects, e.g. [{\"id\": \"1\", \"title\": \"...\"}]")
    return data, list(range(1, len(data) + 1))


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), "null")


def _json_lines(text: str, path: Path) -> tuple[list[dict], list[int]]:
    records: list[dict] = []
    rows: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = _loads(line)
        except json.JSONDecodeError as exc:
            raise SparsefitError(f"invalid JSON at character {exc.colno}: {exc.msg}", file=path, row=number,
                                 hint="each line must be one complete JSON object") from None
        except RecursionError:
            raise _too_deep(path, number, None) from None
        if not isinstance(record, dict):
            raise SparsefitError(f"line is {_kind(record)}, not an object", file=path, row=number,
                                 hint="each line must be one JSON object, e.g. {\"id\": \"1\", \"title\": \"...\"}")
        records.append(record)
        rows.append(number)
    return records, rows


def _records_table(records: list[dict], rows: list[int], path: Path, fmt: str, escapes: bool = False) -> Table:
    """The table of parsed records; ``escapes``: the text has surrogate escapes, so check for lone ones."""
    if not records:
        raise SparsefitError("the file contains no records", file=path, hint="add at least one object")
    columns = list(dict.fromkeys(key for record in records for key in record))
    if not columns:
        raise SparsefitError("the records have no fields", file=path, hint="add fields such as an id and a title")
    texts: dict[str, list[str]] = {}
    nested: dict[str, str] = {}
    for column in columns:
        values = [record.get(column) for record in records]
        kind = _nested_kind(values)
        if kind is not None:
            nested[column] = kind
            for i, value in enumerate(values):
                if isinstance(value, (list, dict)) and _deeper_than(value, _MAX_JSON_DEPTH):
                    raise _too_deep(path, rows[i], column)
        texts[column] = [_to_text(value) for value in values]
        if escapes:
            _check_surrogates(column, texts[column], rows, path)
    frame = pd.DataFrame(texts, columns=columns, dtype=object).astype(str)
    typed = pd.DataFrame({c: pd.Series([r.get(c) for r in records], dtype=object) for c in columns})
    typed = typed.convert_dtypes()
    return Table(frame=frame, rows=np.asarray(rows, dtype=np.int64), path=path, format=fmt, nested=nested,
                 source_values=typed)


def _deeper_than(value: list | dict, limit: int) -> bool:
    """Whether lists/objects nest more than ``limit`` levels (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def _check_surrogates(column: str, texts: list[str], rows: list[int], path: Path) -> None:
    """A lone ``\\ud800``-``\\udfff`` escape parses, but no text can hold it (UTF-8, Arrow, the index)."""
    for i, text in [(None, column), *enumerate(texts)]:
        if (lone := _SURROGATE.search(text)) is not None:
            raise SparsefitError(
                f"{'the field name' if i is None else 'text'} holds a lone surrogate escape "
                f"(\\u{ord(lone.group()):04x}), which is not valid Unicode", file=path,
                row=None if i is None else rows[i], column=column.encode("utf-8", "backslashreplace").decode("utf-8"),
                hint="escapes \\ud800-\\udfff must come in high-low pairs; write the character itself, saved as UTF-8",
            )


def _nested_kind(values: list[Any]) -> str | None:
    kind = None
    for value in values:
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value)):
            return "struct"
        if isinstance(value, list):
            kind = "list"
    return kind


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(t for t in (_to_text(v) for v in value) if t.strip())
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# -- Parquet --------------------------------------------------------------------------------------

def _read_parquet(path: Path, data: bytes | bytearray, limit: int | None) -> Table:
    """Parquet compresses inside the file (codecs, dictionaries, run lengths: a few KB can hold GBs of
    text), so it is decoded a batch at a time and its decoded size capped like a compressed file's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not data:
        raise SparsefitError("file is empty", file=path, hint="write the Parquet file again")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        batches, decoded = [], 0
        for batch in parquet.iter_batches(batch_size=8192):
            decoded += batch.nbytes
            if limit is not None and decoded > limit:
                raise too_large(path, limit)
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        table.validate(full=True)  # e.g. text that is not UTF-8 would otherwise fail later, in to_pylist
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SparsefitError(f"not a readable Parquet file ({reason})", file=path,
                             hint="write it again with pandas/pyarrow, or export CSV instead") from None
    names = table.column_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SparsefitError("column name appears twice", file=path, column=duplicated[0], hint="rename one of them")
    if table.num_rows == 0:
        raise SparsefitError("the file has columns but no rows", file=path, hint="write it again with data rows")
    texts: dict[str, list[str]] = {}
    nested: dict[str, str] = {}
    for name, column in zip(names, table.columns):
        texts[name], kind = _arrow_text(column)
        if kind is not None:
            nested[name] = kind
    frame = pd.DataFrame(texts, columns=names, dtype=object).astype(str)
    typed = table.to_pandas(types_mapper=_nullable_types().get)
    return Table(frame=frame, rows=np.arange(1, table.num_rows + 1, dtype=np.int64), path=path, format="parquet",
                 nested=nested, source_values=typed)


def _arrow_text(column: Any) -> tuple[list[str], str | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind_of = column.type
    if pa.types.is_list(kind_of) or pa.types.is_large_list(kind_of) or pa.types.is_fixed_size_list(kind_of):
        flat = kind_of.value_type
        kind = "struct" if pa.types.is_nested(flat) else "list"
        return [_to_text(v) for v in column.to_pylist()], kind
    if pa.types.is_nested(kind_of):
        return [json.dumps(v, ensure_ascii=False, default=str) if v is not None else "" for v in column.to_pylist()], "struct"
    if pa.types.is_boolean(kind_of):
        return [_to_text(v) for v in column.to_pylist()], None
    try:
        return pc.fill_null(pc.cast(column, pa.string()), "").to_pylist(), None
    except (pa.ArrowException, ValueError):
        return [repr(v) if v is not None else "" for v in column.to_pylist()], "binary"


def _nullable_types() -> dict:
    import pyarrow as pa

    return {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
        pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
    }
