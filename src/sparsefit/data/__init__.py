"""Reading the user's data: the product catalog, relevance judgments (with label schemes), the query split.

Example:
    >>> from sparsefit.data import load_catalog, load_judgments, split_queries
    >>> catalog = load_catalog("examples/catalog.csv")                  # doctest: +SKIP
    >>> judgments = load_judgments("examples/judged_queries.csv", catalog)  # doctest: +SKIP
    >>> split = split_queries(judgments, test_fraction=0.2, seed=13)    # doctest: +SKIP
"""

from __future__ import annotations

from sparsefit.data.catalog import Catalog, load_catalog
from sparsefit.data.judgments import Judgments, load_judgments
from sparsefit.data.labels import LabelScheme, canonical_label, detect_scheme
from sparsefit.data.readers import read_table
from sparsefit.data.split import Split, split_queries
from sparsefit.data.table import Table

__all__ = [
    "Catalog",
    "Judgments",
    "LabelScheme",
    "Split",
    "Table",
    "canonical_label",
    "detect_scheme",
    "load_catalog",
    "load_judgments",
    "read_table",
    "split_queries",
]
