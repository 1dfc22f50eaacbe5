"""Which columns of a judgments file hold the query, the product id and the label: given by the user, or
detected from common names (with a catalog, its own id column name is tried first).

Why plain "id" comes last: in judgment exports it is often the judgment row's id, not the product's.

Example:
    >>> import numpy as np, pandas as pd, pathlib
    >>> from sparsefit.data.table import Table
    >>> frame = pd.DataFrame({"id": ["1"], "product_uid": ["10"], "search_term": ["deck"], "relevance": ["3"]})
    >>> find_columns(Table(frame, np.array([2]), pathlib.Path("j.csv"), "csv"), None, None, None, None)
    ('search_term', 'product_uid', 'relevance')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsefit.data.columns import detect_column, resolve_column, show_columns
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

if TYPE_CHECKING:
    from sparsefit.data.catalog import Catalog

QUERY_CANDIDATES = ("query", "search_term", "search_query", "keyword", "keywords", "query_text", "q", "term")
PRODUCT_CANDIDATES = (
    "product_id", "product_uid", "asin", "sku", "item_id", "doc_id", "docid", "pid",
    "productid", "itemid", "document_id",
)  # plain "id" is used only when none of these exists: it is often a judgment row id
LABEL_CANDIDATES = (
    "label", "relevance", "esci_label", "grade", "judgment", "rating", "score", "relevance_label", "gain", "rel",
)


def find_columns(
    table: Table, catalog: Catalog | None, query_field: str | None, id_field: str | None, label_field: str | None
) -> tuple[str, str, str]:
    """The (query, product id, label) columns: the named ones resolved, the others detected; all distinct."""
    columns = show_columns(table.columns)
    if query_field:
        qcol = resolve_column(table, query_field, what="query", flag="--query-field")
    else:
        qcol = detect_column(table, QUERY_CANDIDATES) or _missing(table, "query", QUERY_CANDIDATES, "--query-field", columns)
    if id_field:
        pcol = resolve_column(table, id_field, what="product id", flag="--judgment-id-field")
    else:
        pcol = _catalog_id_column(table, catalog) or detect_column(table, PRODUCT_CANDIDATES) or detect_column(
            table, ("id",)) or _missing(table, "product id", (*PRODUCT_CANDIDATES, "id"), "--judgment-id-field", columns)
    if label_field:
        lcol = resolve_column(table, label_field, what="label", flag="--label-field")
    else:
        lcol = detect_column(table, LABEL_CANDIDATES) or _missing(table, "label", LABEL_CANDIDATES, "--label-field", columns)
    roles = {"query": qcol, "product id": pcol, "label": lcol}
    if len(set(roles.values())) < 3:
        twice = next(c for c in roles.values() if list(roles.values()).count(c) > 1)
        raise SparsefitError("the same column is used for two roles (query, product id, label)", file=table.path,
                             column=twice, hint="pass --query-field, --judgment-id-field and --label-field explicitly")
    return qcol, pcol, lcol


def _catalog_id_column(table: Table, catalog: Catalog | None) -> str | None:
    if catalog is None:
        return None
    try:
        return resolve_column(table, catalog.id_field, what="product id", flag="--judgment-id-field")
    except SparsefitError:
        return None


def _missing(table: Table, what: str, candidates: tuple[str, ...], flag: str, columns: str) -> str:
    raise SparsefitError(f"no {what} column found (looked for {', '.join(candidates)}); columns are {columns}",
                         file=table.path, hint=f"pass {flag} COLUMN")
