"""The one user-facing error type: a clear, one-line message that names file, row, column and fix.

The CLI turns a :class:`SparsefitError` into that line on stderr and exit code 2, never a traceback.

Example:
    >>> err = SparsefitError("label is empty", file="j.csv", row=7, column="relevance",
    ...                      hint="fill it in or pass --on-invalid skip")
    >>> str(err)
    'j.csv, row 7, column "relevance": label is empty. Fix: fill it in or pass --on-invalid skip'
"""

from __future__ import annotations

from pathlib import Path

EXIT_USAGE = 2


class SparsefitError(Exception):
    """A problem with the user's input or environment that the user can fix."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message.rstrip(".")
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f'column "{self.column}"')
        text = (", ".join(where) + ": " if where else "") + self.message + "."
        if self.hint:
            text += f" Fix: {self.hint}"
        return " ".join(text.split("\n"))
