"""sparsefit: fine-tune sparse neural retrievers (SPLADE) on a product catalog and serve them from Qdrant.

The public API (imported lazily, so ``import sparsefit`` and the CLI start fast):

    >>> import sparsefit
    >>> catalog = sparsefit.load_catalog("examples/catalog.csv")                   # doctest: +SKIP
    >>> judgments = sparsefit.load_judgments("examples/judged_queries.csv", catalog)   # doctest: +SKIP
    >>> split = sparsefit.split_queries(judgments, seed=13)                        # doctest: +SKIP
    >>> report = sparsefit.evaluate(catalog, judgments, split, models=["splade-tiny"])  # doctest: +SKIP
    >>> print(report.mean("splade-tiny")["ndcg@10"])                               # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SparsefitError": "sparsefit.errors",
    "Catalog": "sparsefit.data",
    "Judgments": "sparsefit.data",
    "Split": "sparsefit.data",
    "load_catalog": "sparsefit.data",
    "load_judgments": "sparsefit.data",
    "split_queries": "sparsefit.data",
    "Encoder": "sparsefit.models",
    "load_encoder": "sparsefit.models",
    "open_index": "sparsefit.index",
    "finetune": "sparsefit.pipeline",
    "Trainer": "sparsefit.pipeline",
    "finetune_domains": "sparsefit.pipeline",
    "MultiDomainTrainer": "sparsefit.pipeline",
    "evaluate": "sparsefit.evaluation.evaluate",
    "Report": "sparsefit.evaluation.report",
    "Settings": "sparsefit.config",
    "load_settings": "sparsefit.config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sparsefit' has no attribute {name!r}")
