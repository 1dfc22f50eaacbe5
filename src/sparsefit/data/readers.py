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

from pathlib import Path

from sparsefit.data.decoding import decode
from sparsefit.data.delimited import read_delimited
from sparsefit.data.json_records import read_json
from sparsefit.data.parquet import read_parquet
from sparsefit.data.raw import (
    COMPRESSIONS,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    check_limit,
    read_bytes,
)
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "txt",
    ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
}
SUPPORTED = "CSV, TSV, JSON, JSON Lines (.jsonl/.ndjson) or Parquet (optionally .gz, .bz2 or .xz compressed)"


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
        return read_parquet(path, data, max_decompressed_bytes)
    if not data or data.isspace():  # same test as "not data.strip()", without copying the data
        raise SparsefitError("file is empty", file=path, hint="export the table again, with a header row and data rows")
    text = decode(data, path, encoding, fmt)
    if fmt in ("json", "jsonl"):
        return read_json(text, path, fmt)
    return read_delimited(text, path, fmt)


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
