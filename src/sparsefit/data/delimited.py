"""Delimited text (CSV, TSV, .txt; comma, tab or semicolon) read into a :class:`Table`.

Why strict parsing: a stray quote or a row with too many fields is an error naming its row, never a
silently shifted column. Row numbers are spreadsheet rows (the header is row 1); blank lines are skipped.

Example:
    >>> from pathlib import Path
    >>> table = read_delimited("id;title\\n1;Mug\\n\\n2;Cup\\n", Path("p.csv"), "csv")
    >>> table.frame["title"].tolist(), table.rows.tolist()
    (['Mug', 'Cup'], [2, 4])
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError


def _delimiter(header: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    if "," not in header and "\t" in header:
        return "\t"
    if "," not in header and ";" in header:
        return ";"
    return "\t" if fmt == "txt" and "\t" in header else ","


def read_delimited(text: str, path: Path, fmt: str) -> Table:
    """The table of a delimited text; the delimiter is the format's, or guessed from the header line."""
    return next(iter_delimited(io.StringIO(text, newline=""), text.split("\n", 1)[0], path, fmt))


def iter_delimited(lines: Iterable[str], header_line: str, path: Path, fmt: str, chunk_size: int | None = None) -> Iterator[Table]:
    """Tables of at most ``chunk_size`` records (None: one table) from the text ``lines`` of a file whose
    first line is ``header_line``: a file read a piece at a time parses exactly as a whole one."""
    delimiter = _delimiter(header_line, fmt)
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[list[str]] = []
    rows: list[int] = []
    row = 0
    any_rows = False
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
            if chunk_size is not None and len(records) >= chunk_size:
                yield _table(records, rows, header, path, fmt)
                records, rows, any_rows = [], [], True
    except csv.Error as exc:
        raise SparsefitError(
            f"malformed {'CSV' if delimiter == ',' else 'delimited text'}: {exc}", file=path, row=row + 1,
            hint='wrap values containing the delimiter, quotes or line breaks in double quotes, doubling inner quotes ("")',
        ) from None
    if header is None:
        raise SparsefitError("file is empty", file=path, hint="export the table again, with a header row and data rows")
    if not records and not any_rows:
        raise SparsefitError("the file has a header but no rows", file=path, hint="add data rows below the header")
    if records:
        yield _table(records, rows, header, path, fmt)


def _table(records: list[list[str]], rows: list[int], header: list[str], path: Path, fmt: str) -> Table:
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
