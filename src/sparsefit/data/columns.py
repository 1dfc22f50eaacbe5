"""Column names: matching the name a user gave (ignoring case, spaces and dashes), detecting a column from
candidate names, and listing the columns in a message when none fits.

Example:
    >>> show_columns([f"c{i}" for i in range(27)]).endswith("'c24' (and 2 more)")
    True
"""

from __future__ import annotations

import re

from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

_MAX_SHOWN_COLUMNS = 25


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
