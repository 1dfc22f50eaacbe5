"""The table every file format is read into: each value as the file's exact text, plus a typed copy.

Why text: ids such as ``"00123"`` must never be mangled into numbers, and a missing value is ``""``.
The typed copy (ints, floats, bools inferred per column, or the source's own types for JSON and
Parquet) is what goes into payloads.

Example:
    >>> import numpy as np, pandas as pd, pathlib
    >>> t = Table(pd.DataFrame({"sku": ["007"], "n": ["3"]}), np.array([2]), pathlib.Path("p.csv"), "csv")
    >>> t.columns, t.typed()["n"].tolist(), t.values("sku", use="id")
    (['sku', 'n'], [3], ['007'])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsefit.errors import SparsefitError

_INT_RE = r"[+-]?(?:0|[1-9][0-9]*)"
_FLOAT_RE = r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"


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


def to_text(value: Any) -> str:
    """A parsed JSON/Parquet value as cell text: None as "", bools as true/false, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(t for t in (to_text(v) for v in value) if t.strip())
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
