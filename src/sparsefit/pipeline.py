"""The order of the stages: load → split → evaluate (→ later: generate, mine, train, export).

This is the only module that knows that order; each stage lives in its own module.

Example:
    >>> from sparsefit.config import load_settings
    >>> report, folder = run_evaluation("examples/catalog.csv", "examples/judgments.csv",
    ...                                 load_settings(output="runs/demo"))   # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sparsefit.config import Settings, save_settings
from sparsefit.data import Catalog, Judgments, Split, load_catalog, load_judgments, split_queries
from sparsefit.evaluation.evaluate import evaluate
from sparsefit.evaluation.report import Report
from sparsefit.run import new_run_folder, write_json

SPLIT_FILE = "split.json"


@dataclass
class Inputs:
    """The loaded, validated inputs of a run."""

    catalog: Catalog
    judgments: Judgments
    split: Split
    test_judgments: Judgments | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def load_inputs(catalog_path: str | Path, judgments_path: str | Path, settings: Settings, folder: Path) -> Inputs:
    """Load the catalog and judgments with ``settings`` and decide (or reuse) the query split."""
    started = time.perf_counter()
    catalog = load_catalog(
        catalog_path, id_field=settings.id_field, text_fields=settings.text_fields, template=settings.template,
        on_invalid=settings.on_invalid, encoding=settings.encoding,
    )
    judgment_options = dict(
        query_field=settings.query_field, id_field=settings.judgment_id_field, label_field=settings.label_field,
        scheme=settings.label_scheme, gains=settings.gains, relevant_threshold=settings.relevant_threshold,
        on_invalid=settings.on_invalid, on_unknown_product=settings.on_unknown_product, on_conflict=settings.on_conflict, encoding=settings.encoding,
    )
    judgments = load_judgments(judgments_path, catalog, **judgment_options)
    test_judgments = None
    if settings.test_judgments is not None:
        # The very same gains for the test file: a graded range is otherwise detected per file.
        test_judgments = load_judgments(settings.test_judgments, catalog, **{**judgment_options, "scheme": judgments.scheme})
        judgments = judgments.merge(test_judgments)
    loaded = time.perf_counter()
    split = _decide_split(judgments, test_judgments, settings, folder)
    return Inputs(catalog, judgments, split, test_judgments, {"load": loaded - started, "split": time.perf_counter() - loaded})


def _decide_split(judgments: Judgments, test_judgments: Judgments | None, settings: Settings, folder: Path) -> Split:
    """Reuse ``--split`` or the folder's saved split when there is one; otherwise make and save one."""
    saved = settings.split_file or (folder / SPLIT_FILE if (folder / SPLIT_FILE).is_file() else None)
    if saved is not None:
        split = Split.load(saved)
        split.check(judgments)
    else:
        split = split_queries(
            judgments, test_fraction=settings.test_fraction, seed=settings.seed, test_judgments=test_judgments
        )
    split.save(folder / SPLIT_FILE)
    return split


def run_evaluation(
    catalog_path: str | Path, judgments_path: str | Path, settings: Settings, *, show_progress: bool = True
) -> tuple[Report, Path, Inputs]:
    """Load, split, evaluate BM25 and ``settings.models`` on the held-out queries, save everything."""
    folder = Path(settings.output) if settings.output else new_run_folder("evaluate")
    folder.mkdir(parents=True, exist_ok=True)
    save_settings(settings, folder / "config.yaml")
    inputs = load_inputs(catalog_path, judgments_path, settings, folder)
    report = evaluate(
        inputs.catalog, inputs.judgments, inputs.split,
        models=settings.models, bm25=settings.bm25,
        index_root=None if settings.qdrant_url else folder / "indexes",
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        collection=settings.collection, retrieve_k=settings.retrieve_k, batch_size=settings.batch_size,
        max_seq_length=settings.max_seq_length, architecture=settings.architecture, show_progress=show_progress,
    )
    report.save(folder)
    write_json(folder / "inputs.json", describe_inputs(inputs))
    return report, folder, inputs


def describe_inputs(inputs: Inputs) -> dict:
    """What was loaded and detected, for the run folder and for ``sparsefit inspect``."""
    catalog, judgments = inputs.catalog, inputs.judgments
    return {
        "catalog": {
            "file": str(catalog.source), "products": len(catalog), "id_field": catalog.id_field,
            "text_fields": catalog.text_fields, "template": catalog.template, "skipped": catalog.skipped,
        },
        "judgments": {
            "file": str(judgments.source), "judgments": len(judgments.product_ids), "queries": len(judgments.keys()),
            "query_field": judgments.query_field, "id_field": judgments.id_field, "label_field": judgments.label_field,
            "label_scheme": judgments.scheme.describe(), "unknown_products": judgments.unknown_products,
            "unknown_examples": judgments.unknown_examples, "conflict_examples": judgments.conflict_examples,
            "skipped": judgments.skipped,
        },
        "split": {"train": len(inputs.split.train), "test": len(inputs.split.test), "seed": inputs.split.seed,
                  "method": inputs.split.method},
        "seconds": inputs.seconds,
    }
