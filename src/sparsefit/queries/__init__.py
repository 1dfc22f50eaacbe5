"""Training queries for catalogs without judgments: generated offline (default) or by an LLM.

Generated queries are written as JSON lines (``query``, ``product_id``, ``label``, ``source``,
``kind``) that people can review and edit, and that load back as binary judgments.

Example:
    >>> from sparsefit.data import load_catalog
    >>> catalog = load_catalog("examples/catalog.csv")                     # doctest: +SKIP
    >>> queries = generate_offline(catalog, per_product=2)                 # doctest: +SKIP
    >>> write_queries(queries, "queries.jsonl")                            # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sparsefit.files import write_atomic
from sparsefit.queries.llm import LLMQueryGenerator, LLMReport
from sparsefit.queries.offline import GeneratedQuery, OfflineQueryGenerator, generate_offline

__all__ = [
    "GeneratedQuery", "LLMQueryGenerator", "LLMReport", "OfflineQueryGenerator", "generate_offline", "write_queries",
]


def write_queries(queries: Sequence[GeneratedQuery], path: str | Path) -> Path:
    """Write ``queries`` as JSON lines, atomically; every line is a positive judgment (label 1)."""
    lines = (
        json.dumps({"query": q.query, "product_id": q.product_id, "label": 1, "source": q.source, "kind": q.kind},
                   ensure_ascii=False)
        for q in queries
    )
    path = Path(path)
    write_atomic(path, "".join(line + "\n" for line in lines))
    return path
