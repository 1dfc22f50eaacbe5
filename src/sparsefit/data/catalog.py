"""The product catalog: ids exactly as text, one flattened text per product, and the full typed payload.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "products.csv"
    >>> _ = path.write_text("sku,title,brand,price\\n00123,Red mug,Acme,4\\n00124,Blue cup,,5\\n")
    >>> catalog = load_catalog(path)
    >>> catalog.ids, catalog.texts, catalog.text_fields
    (['00123', '00124'], ['Red mug. Acme', 'Blue cup'], ['title', 'brand'])
    >>> catalog.payload_of(0)
    {'sku': '00123', 'title': 'Red mug', 'brand': 'Acme', 'price': 4}
"""

from __future__ import annotations

import hashlib
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from sparsefit.data.benchmark_formats import catalog_file
from sparsefit.data.columns import (
    detect_column,
    normalise_name,
    resolve_column,
    show_columns,
)
from sparsefit.data.raw import DEFAULT_MAX_DECOMPRESSED_BYTES
from sparsefit.data.readers import read_table
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

ID_CANDIDATES = (
    "product_id", "product_uid", "productid", "item_id", "itemid", "sku", "asin",
    "doc_id", "docid", "document_id", "pid", "uid", "id", "_id",  # _id: BEIR's corpus.jsonl
)
# One column is taken from each group (the first present), in this order.
TEXT_GROUPS = (
    ("product_title", "title", "product_name", "name", "item_name", "item_title"),
    ("product_brand", "brand", "brand_name", "manufacturer"),
    ("category", "product_category", "category_name", "categories", "category_hierarchy", "category_path",
     "product_class"),
    ("product_description", "description", "desc", "long_description", "text", "body", "content"),
    ("product_bullet_point", "bullet_points", "bullet_point", "bullets", "features", "product_features"),
)
SKIP_HINT = "or pass --on-invalid skip to leave such rows out (they are counted)"


@dataclass(eq=False, repr=False)
class Catalog:
    """Products in file order (minus rows skipped on request).

    ``payload`` keeps every column with its inferred type; the id column stays text.
    """

    ids: list[str]
    texts: list[str]
    payload: pd.DataFrame
    id_field: str
    text_fields: list[str]
    template: str
    source: Path
    skipped: dict[str, int] = field(default_factory=dict)
    rows: np.ndarray | None = None  # source row number of each product, for messages
    _positions: dict[str, int] | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return (f"Catalog({len(self)} products from {str(self.source)!r}, id_field={self.id_field!r}, "
                f"text_fields={self.text_fields!r}, skipped={self.skipped!r})")

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._index()

    def _index(self) -> dict[str, int]:
        if self._positions is None:
            self._positions = {pid: i for i, pid in enumerate(self.ids)}
        return self._positions

    def position(self, product_id: str) -> int:
        """Index of ``product_id`` in ``ids``; a :class:`SparsefitError` if it is not in the catalog."""
        try:
            return self._index()[product_id]
        except KeyError:
            raise SparsefitError(f"product id '{product_id}' is not in the catalog", file=self.source,
                                 hint=f"check the id against the catalog's '{self.id_field}' column") from None

    def payload_of(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a JSON-safe dict: missing values left out, numpy scalars as Python values."""
        out: dict[str, Any] = {}
        for name, value in self.payload.iloc[i].items():
            clean = json_safe(value)
            if clean is not None:
                out[str(name)] = clean
        return out

    def payloads(self) -> list[dict[str, Any]]:
        """Every row's :meth:`payload_of`, built in one pass (far faster than row by row)."""
        return [{str(name): clean for name, value in record.items() if (clean := json_safe(value)) is not None}
                for record in self.payload.to_dict("records")]

    def fingerprint(self) -> str:
        """sha256 over ids and texts: changes whenever what gets indexed changes."""
        digest = hashlib.sha256()
        self.add_to_fingerprint(digest)
        return digest.hexdigest()

    def add_to_fingerprint(self, digest: Any) -> None:
        """Feed the ids and texts to ``digest``: the chunks of a streamed file, fed in order, give the whole
        file's :meth:`fingerprint`."""
        for pid, text in zip(self.ids, self.texts):
            digest.update(pid.encode("utf-8") + b"\x1f" + text.encode("utf-8") + b"\x1e")


def json_safe(value: Any) -> Any:
    """A JSON-serialisable version of a cell, or None when it is missing (None/NA/NaN/"").

    Example:
        >>> json_safe(np.int64(3)), json_safe(float("nan")), json_safe(np.array(["a", "b"]))
        (3, None, ['a', 'b'])
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items() if json_safe(v) is not None}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (pd.Timestamp,)) or hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def load_catalog(
    path: str | Path,
    *,
    id_field: str | None = None,
    text_fields: Sequence[str] | str | None = None,
    template: str | None = None,
    on_invalid: Literal["error", "skip"] = "error",
    encoding: str | None = None,
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> Catalog:
    """Load a product catalog; ids and text columns are detected unless given.

    ``text_fields`` may be a list or a comma-separated string. ``template`` is a Python format string
    over column names, e.g. ``"{brand}: {title}"``. Without a template the text fields are joined with
    ". ", leaving out blank ones. A compressed file (.gz, .bz2, .xz) that expands past
    ``max_decompressed_bytes`` (None: no cap) is an error, read without ever holding more than that.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.jsonl"
        >>> _ = path.write_text('{"asin": "B01", "name": "Lamp", "brand": "Lux"}\\n')
        >>> load_catalog(path, template="{brand}: {name}").texts
        ['Lux: Lamp']
    """
    check_mode(on_invalid)
    table = read_table(catalog_file(Path(path)), encoding=encoding, max_decompressed_bytes=max_decompressed_bytes)
    return catalog_of(table, catalog_columns(table, id_field, text_fields, template), on_invalid)


@dataclass(frozen=True)
class CatalogColumns:
    """The columns a catalog is read with: decided once, from the whole file or a streamed file's first chunk."""

    id_field: str
    text_fields: list[str]
    parts: list[tuple[str, str | None, str]]  # the text to render: (literal, column or None, format spec)
    template: str


def catalog_columns(
    table: Table, id_field: str | None = None, text_fields: Sequence[str] | str | None = None, template: str | None = None
) -> CatalogColumns:
    """The id and text columns of ``table``: the ones given (matched leniently), else detected."""
    id_column = _id_column(table, id_field)
    fields, parts = _text_setup(table, id_column, text_fields, template)
    shown = template if template is not None else ". ".join("{" + f + "}" for f in fields)
    return CatalogColumns(id_column, fields, parts, shown)


def catalog_of(
    table: Table, columns: CatalogColumns, on_invalid: Literal["error", "skip"] = "error", *, require_rows: bool = True
) -> Catalog:
    """The products of ``table`` read with ``columns``; bad rows are an error or skipped (counted).

    ``require_rows=False`` accepts a table whose every row is skipped (one chunk of a streamed file).
    """
    ids = table.values(columns.id_field, use="id")
    values = {name: table.values(name, use="text") for name in columns.text_fields}
    texts, blank = _render(columns.parts, values, len(table))
    keep, skipped = _validate(table, columns.id_field, columns.text_fields, ids, blank, on_invalid, require_rows)
    positions = np.flatnonzero(keep)
    payload = table.typed().iloc[positions].reset_index(drop=True).copy()
    payload[columns.id_field] = pd.Series([ids[i] for i in positions], dtype=object)
    return Catalog(
        ids=[ids[i] for i in positions],
        texts=[texts[i] for i in positions],
        payload=payload,
        id_field=columns.id_field,
        text_fields=list(columns.text_fields),
        template=columns.template,
        source=table.path,
        skipped=skipped,
        rows=table.rows[positions],
    )


def check_mode(on_invalid: str) -> None:
    if on_invalid not in ("error", "skip"):
        raise SparsefitError(f"on_invalid must be 'error' or 'skip', not '{on_invalid}'", hint="pass --on-invalid error or skip")


# -- columns --------------------------------------------------------------------------------------

def _id_column(table: Table, id_field: str | None) -> str:
    if id_field:
        return resolve_column(table, id_field, what="id", flag="--id-field")
    found = detect_column(table, ID_CANDIDATES)
    if found is None:
        raise SparsefitError(
            f"no id column found (looked for {', '.join(ID_CANDIDATES)}); columns are {show_columns(table.columns)}",
            file=table.path, hint="pass --id-field COLUMN (ids are never taken from row numbers)",
        )
    return found


def _text_setup(
    table: Table, id_column: str, text_fields: Sequence[str] | str | None, template: str | None
) -> tuple[list[str], list[tuple[str, str | None, str]]]:
    """The text columns and the parts to render: (literal, column or None, format spec)."""
    if isinstance(text_fields, str):
        text_fields = [f for f in text_fields.split(",") if f.strip()]
    given = [resolve_column(table, f.strip(), what="text", flag="--text-fields") for f in text_fields or []]
    if template is not None:
        parts = _parse_template(table, template)
        fields = list(dict.fromkeys(c for _, c, _ in parts if c is not None))
        extra = [f for f in fields if given and f not in given]
        if extra:
            raise SparsefitError(f"--template uses '{extra[0]}', which is not among --text-fields",
                                 file=table.path, hint="pass either --template or --text-fields, or list it in both")
        return fields, parts
    fields = given or _detect_text_fields(table, id_column)
    return fields, [("", f, "") for f in fields]


def _detect_text_fields(table: Table, id_column: str) -> list[str]:
    excluded = tuple(c for c in table.columns if c == id_column or table.nested.get(c) not in (None, "list"))
    found = [detect_column(table, group, exclude=excluded) for group in TEXT_GROUPS]
    fields = [f for f in found if f is not None]
    if not fields:
        names = ", ".join(g[0] if g[0] != "product_title" else "title" for g in TEXT_GROUPS)
        raise SparsefitError(
            f"no text column found (looked for {names} and similar); columns are {show_columns(table.columns)}",
            file=table.path, hint="pass --text-fields COLUMN[,COLUMN...] or --template \"{col1} {col2}\"",
        )
    return fields


def _parse_template(table: Table, template: str) -> list[tuple[str, str | None, str]]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SparsefitError(f"template {template!r} is not a valid format string ({exc})", file=table.path,
                             hint='write fields in braces, e.g. "{brand}: {title}"; double a literal brace ({{)') from None
    parts: list[tuple[str, str | None, str]] = []
    for literal, name, spec, _conversion in parsed:
        if name is None:
            parts.append((literal, None, ""))
            continue
        if not name.strip():
            raise SparsefitError(f"template {template!r} has an empty field {{}}", file=table.path,
                                 hint='name the column inside the braces, e.g. "{title}"')
        if name not in table.columns and not any(normalise_name(c) == normalise_name(name) for c in table.columns):
            raise SparsefitError(
                f"template field '{{{name}}}' is not a column; columns are {show_columns(table.columns)}",
                file=table.path, hint="use column names from the file in --template",
            )
        try:
            format("", spec or "")
        except ValueError:
            raise SparsefitError(f"template field '{{{name}:{spec}}}' has an invalid format spec", file=table.path,
                                 hint='text fields take no format spec; write e.g. "{title}"') from None
        parts.append((literal, resolve_column(table, name, what="template", flag="--template"), spec or ""))
    if not any(column for _, column, _ in parts):
        raise SparsefitError(f"template {template!r} names no column", file=table.path,
                             hint='put column names in braces, e.g. "{brand}: {title}"')
    return parts


# -- text -----------------------------------------------------------------------------------------

def _render(parts: list[tuple[str, str | None, str]], values: dict[str, list[str]], n: int) -> tuple[list[str], np.ndarray]:
    """Texts (whitespace collapsed) and a mask of rows whose text fields are all blank."""
    columns = [c for _, c, _ in parts if c is not None]
    is_template = any(literal or spec for literal, _, spec in parts) or len(parts) != len(columns)
    blank = np.ones(n, dtype=bool)
    for column in dict.fromkeys(columns):
        blank &= np.asarray([v == "" for v in values[column]], dtype=bool)
    texts: list[str] = []
    for i in range(n):
        if is_template:
            text = "".join(literal + (format(values[c][i], spec) if c is not None else "") for literal, c, spec in parts)
        else:
            text = _join([values[c][i] for c in columns])
        texts.append(" ".join(text.split()))
    blank |= np.asarray([t == "" for t in texts], dtype=bool)
    return texts, blank


def _join(pieces: list[str]) -> str:
    """Non-blank pieces joined with ". " (just a space after a piece already ending in punctuation)."""
    out = ""
    for piece in (p for p in pieces if p):
        if out:
            out += " " if out[-1] in ".!?:;" else ". "
        out += piece
    return out


# -- validation -----------------------------------------------------------------------------------

def _validate(
    table: Table, id_column: str, fields: list[str], ids: list[str], blank_text: np.ndarray, on_invalid: str,
    require_rows: bool = True,
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows to keep, and reason -> count of skipped rows; errors in ``error`` mode."""
    rows = table.rows
    blank_id = np.asarray([pid == "" for pid in ids], dtype=bool)
    empty = blank_text & ~blank_id
    keep = ~blank_id & ~empty
    duplicate, first_of = _duplicates(ids, keep)
    if on_invalid == "error":
        _raise_first(table, id_column, fields, ids, blank_id, empty, duplicate, first_of)
    skipped = {reason: int(mask.sum()) for reason, mask in
               (("blank id", blank_id), ("empty text", empty), ("duplicate id", duplicate)) if mask.any()}
    keep &= ~duplicate
    if require_rows and not keep.any():
        raise no_usable_products(table.path, len(rows), skipped)
    return keep, skipped


def no_usable_products(path: Path, rows: int, skipped: dict[str, int]) -> SparsefitError:
    return SparsefitError(f"no usable products: all {rows} rows were skipped ({_counts(skipped)})",
                          file=path, hint="check --id-field and --text-fields")


def _duplicates(ids: list[str], keep: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Mask of kept rows repeating an earlier kept id, and for each the position of the first one."""
    seen: dict[str, int] = {}
    duplicate = np.zeros(len(ids), dtype=bool)
    first_of: dict[int, int] = {}
    for i in np.flatnonzero(keep):
        first = seen.setdefault(ids[i], int(i))
        if first != i:
            duplicate[i] = True
            first_of[int(i)] = first
    return duplicate, first_of


def _raise_first(table, id_column, fields, ids, blank_id, empty, duplicate, first_of) -> None:
    rows = table.rows
    if blank_id.any():
        i = int(np.flatnonzero(blank_id)[0])
        raise SparsefitError(f"product id is blank{_more(blank_id, 'blank ids')}", file=table.path,
                             row=int(rows[i]), column=id_column, hint=f"fill in the id, {SKIP_HINT}")
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise SparsefitError(
            f"product '{ids[i]}' has no text ({', '.join(fields)} {'is' if len(fields) == 1 else 'are all'} blank)"
            f"{_more(empty, 'rows without text')}",
            file=table.path, row=int(rows[i]), hint=f"fill in the text, choose other --text-fields, {SKIP_HINT}",
        )
    if duplicate.any():
        i = int(np.flatnonzero(duplicate)[0])
        raise repeated_id(table.path, id_column, int(rows[i]), ids[i], int(rows[first_of[i]]),
                          _more(duplicate, "repeated ids"))


def repeated_id(path: Path, id_column: str, row: int, product_id: str, first_row: int, more: str = "") -> SparsefitError:
    """The error for row ``row`` repeating the id of row ``first_row``."""
    return SparsefitError(
        f"row {row} repeats id '{product_id}' from row {first_row}{more}", file=path, row=row, column=id_column,
        hint=f"make the ids unique, {SKIP_HINT.replace('leave such rows out', 'keep only the first')}",
    )


def _more(mask: np.ndarray, what: str) -> str:
    total = int(mask.sum())
    return f" ({total} {what} in all)" if total > 1 else ""


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "none"
