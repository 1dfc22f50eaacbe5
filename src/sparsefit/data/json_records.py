"""JSON (a list of objects) and JSON Lines (one object per line) read into a :class:`Table`.

Why the guards: nested values are flagged (they can be text or payload, never ids), nesting deeper
than ``_MAX_JSON_DEPTH`` levels is refused before recursive code downstream overflows, and a lone
``\\ud800``-``\\udfff`` escape is refused because no text can hold it. A ``.json`` file that is really
JSON Lines is read as such. Row numbers are lines for JSON Lines, 1-based records for a JSON list.

Example:
    >>> from pathlib import Path
    >>> table = read_json('[{"id": "1", "tags": ["a", "b"], "n": 2}]', Path("p.json"), "json")
    >>> table.frame["tags"].tolist(), table.nested, table.typed()["n"].tolist()
    (['a, b'], {'tags': 'list'}, [2])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsefit.data.decoding import SURROGATE
from sparsefit.data.table import Table, to_text
from sparsefit.errors import SparsefitError

_MAX_JSON_DEPTH = 64  # nesting deeper than this is no catalog, and would overflow recursive code downstream
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def read_json(text: str, path: Path, fmt: str) -> Table:
    """The table of a JSON list of objects or of JSON Lines (``fmt`` "json" or "jsonl")."""
    escapes = SURROGATE_ESCAPE.search(text) is not None  # only then can a lone surrogate come out of the parser
    if fmt == "jsonl":
        records, rows = _json_lines(text, path)
    else:
        try:
            data = _loads(text)
        except json.JSONDecodeError as exc:
            if _looks_like_json_lines(text):
                records, rows = _json_lines(text, path)
                return records_table(records, rows, path, "jsonl", escapes)
            raise SparsefitError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path,
                                 hint="fix the JSON syntax (a list of objects, or one object per line)") from None
        except RecursionError:
            raise _too_deep(path, None, None) from None
        records, rows = _json_list(data, path)
    return records_table(records, rows, path, fmt, escapes)


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
    return json_lines(enumerate(text.split("\n"), start=1), path)


def json_lines(numbered: Iterable[tuple[int, str]], path: Path) -> tuple[list[dict], list[int]]:
    """The records of JSON Lines given as (line number, line), and their line numbers; blank lines skipped."""
    records: list[dict] = []
    rows: list[int] = []
    for number, line in numbered:
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


def records_table(records: list[dict], rows: list[int], path: Path, fmt: str, escapes: bool = False) -> Table:
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
        texts[column] = [to_text(value) for value in values]
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
        if (lone := SURROGATE.search(text)) is not None:
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
