"""A run's inputs: the catalog and judgments loaded with the settings, the query split decided (or
reused), training queries generated when there are no judgments, and what was detected.

Example:
    >>> from sparsefit.config import load_settings
    >>> catalog_options(load_settings())["on_invalid"]
    'error'
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sparsefit.config import Settings, secret
from sparsefit.data import Catalog, Judgments, Split, load_catalog, load_judgments, split_queries
from sparsefit.errors import SparsefitError
from sparsefit.index import IndexLocation, TwoStage
from sparsefit.progress import progress_bar
from sparsefit.run import RunFolder


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
    catalog = load_catalog(catalog_path, **catalog_options(settings))
    judgment_options = judgments_options(settings)
    judgments = load_judgments(judgments_path, catalog, **judgment_options)
    test_judgments = None
    if settings.test_judgments is not None:
        if judgments.scheme.name == "binary" and settings.label_scheme is None:
            # Binary training data (e.g. generated queries) next to graded or ESCI test judgments:
            # the test file keeps its own scheme, and the binary positives take its top gain.
            test_judgments = load_judgments(settings.test_judgments, catalog, **judgment_options)
            if test_judgments.scheme.name != "binary":
                judgments = judgments.binary_on(test_judgments.scheme)
            # A training query that is also a test query is held out: its training rows are left out (counted).
            test_keys = set(test_judgments.query_keys)
            kept = [k for k in judgments.keys() if k not in test_keys]
            if len(kept) < len(judgments.keys()):
                left_out = len(judgments) - len(judgments.subset(kept))
                judgments = dataclasses.replace(judgments.subset(kept), skipped={
                    **judgments.skipped, "training query equal to a test query (left out)": left_out})
        else:
            # The very same gains for the test file: a graded range is otherwise detected per file.
            test_judgments = load_judgments(settings.test_judgments, catalog, **{**judgment_options, "scheme": judgments.scheme})
        judgments = judgments.merge(test_judgments)
    loaded = time.perf_counter()
    split = _decide_split(judgments, test_judgments, settings, folder)
    return Inputs(catalog, judgments, split, test_judgments, {"load": loaded - started, "split": time.perf_counter() - loaded})


def catalog_options(settings: Settings) -> dict:
    """Keyword arguments of :func:`load_catalog` from the settings."""
    return dict(id_field=settings.id_field, text_fields=settings.text_fields, template=settings.template,
                on_invalid=settings.on_invalid, encoding=settings.encoding,
                max_decompressed_bytes=settings.max_decompressed_mb * 1024**2)


def judgments_options(settings: Settings) -> dict:
    """Keyword arguments of :func:`load_judgments` from the settings."""
    return dict(
        query_field=settings.query_field, id_field=settings.judgment_id_field, label_field=settings.label_field,
        scheme=settings.label_scheme, gains=settings.gains, relevant_threshold=settings.relevant_threshold,
        on_invalid=settings.on_invalid, on_unknown_product=settings.on_unknown_product,
        on_conflict=settings.on_conflict, encoding=settings.encoding,
        max_decompressed_bytes=settings.max_decompressed_mb * 1024**2,
    )


def _decide_split(judgments: Judgments, test_judgments: Judgments | None, settings: Settings, folder: Path) -> Split:
    """Reuse ``--split`` or the folder's saved split when there is one; otherwise make and save one."""
    own = RunFolder(folder).split
    saved = settings.split_file or (own if own.is_file() else None)
    if saved is not None:
        split = Split.load(saved)
        split.check(judgments)
    else:
        split = split_queries(
            judgments, test_fraction=settings.test_fraction, seed=settings.seed, test_judgments=test_judgments
        )
    split.save(own)
    return split


def generate_training_queries(
    catalog_path: str | Path, settings: Settings, target: Path, *, show_progress: bool = True
) -> dict:
    """Write generated training queries to ``target`` (JSON lines) and return what was done.

    Offline by default; an LLM when ``settings.llm_model`` is set (its answers are cached under
    ``$XDG_CACHE_HOME/sparsefit/llm``, so a rerun after an interruption does not pay twice).

    Example:
        >>> from sparsefit.config import load_settings
        >>> generate_training_queries("examples/catalog.csv", load_settings(), Path("queries.jsonl"))  # doctest: +SKIP
        {'source': 'offline', 'products': 400, 'queries': 800, ...}
    """
    from sparsefit.queries import LLMQueryGenerator, OfflineQueryGenerator, write_queries

    catalog = load_catalog(catalog_path, **catalog_options(settings))
    positions = product_sample(len(catalog), settings.query_products or settings.train_products, settings.seed)
    started = time.perf_counter()
    if settings.llm_model:
        prompt = settings.llm_prompt_file.read_text(encoding="utf-8") if settings.llm_prompt_file else None
        generator = LLMQueryGenerator(
            settings.llm_url or "https://api.openai.com/v1", settings.llm_model,
            api_key=secret(settings.llm_api_key),
            per_product=settings.queries_per_product, products_per_request=settings.llm_products_per_request,
            concurrency=settings.llm_concurrency, max_retries=settings.llm_max_retries, prompt_template=prompt,
            cache_dir=llm_cache_dir(),
        )
        with progress_bar(f"asking {settings.llm_model} for queries", len(positions), enabled=show_progress) as advance:
            queries, report = generator.generate(catalog, product_positions=positions, progress=advance)
        info = {"source": f"llm:{settings.llm_model}", **report.as_dict()}
        if not queries:
            raise SparsefitError(f"the LLM gave no usable queries ({report.errors or 'no answers'})",
                                 hint="check --llm-url, --llm-model and the API key (SPARSEFIT_LLM_API_KEY)")
    else:
        generator = OfflineQueryGenerator(catalog, seed=settings.seed, typo_rate=settings.query_typo_rate)
        queries = []
        with progress_bar("generating queries from the catalog", len(positions), enabled=show_progress) as advance:
            for i in positions:
                queries.extend(generator.for_product(i, settings.queries_per_product))
                advance(1)
        covered = len({q.product_id for q in queries})
        info = {"source": "offline", "products": len(positions), "products_with_queries": covered,
                "generated": len(queries), "kinds": dict(sorted(Counter(q.kind for q in queries).items()))}
    info["seconds"] = round(time.perf_counter() - started, 2)
    write_queries(queries, target)
    return info


def llm_cache_dir() -> Path:
    """Where LLM answers are cached, shared by all runs (keyed by model, prompt and product text)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sparsefit" / "llm"


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


def exports_average(settings: Settings) -> bool:
    """True when the exported model is the weight average of the rounds (``--export-model average``, 2+ rounds)."""
    return settings.export_model == "average" and settings.rounds > 1



def product_sample(catalog_size: int, count: int | None, seed: int) -> list[int]:
    """Positions of a seeded sample of ``count`` products (all of them when ``count`` is None or not smaller).

    Example:
        >>> product_sample(10, 3, seed=13) == product_sample(10, 3, seed=13), len(product_sample(10, None, seed=1))
        (True, 10)
    """
    import numpy as np

    if count is None or count >= catalog_size:
        return list(range(catalog_size))
    return sorted(np.random.default_rng(seed).choice(catalog_size, size=count, replace=False).tolist())


def two_stage_of(settings: Settings) -> TwoStage | None:
    """The two-stage search the settings ask for (None: exact search).

    Example:
        >>> two_stage_of(Settings(search_posting_cap=20000)).query_terms
        8
    """
    if settings.search_posting_cap is None:
        return None
    return TwoStage(settings.search_posting_cap, settings.search_query_terms, settings.search_candidates)


def index_location(settings: Settings, folder: Path) -> IndexLocation:
    """Where the settings keep an index: the server collection of ``--qdrant-url``, else Qdrant Edge in ``folder``.

    Sharding and replication are passed for a folder too, which refuses them with a clear error.

    Example:
        >>> index_location(Settings(qdrant_url="http://qdrant:6333", collection="shop"), Path("runs/x/index")).describe()
        "collection 'shop' at http://qdrant:6333"
    """
    if settings.qdrant_url:
        return IndexLocation(url=settings.qdrant_url, collection=settings.collection,
                             api_key=secret(settings.qdrant_api_key), two_stage=two_stage_of(settings),
                             shards=settings.qdrant_shards, replicas=settings.qdrant_replicas,
                             write_consistency=settings.qdrant_write_consistency, on_disk=settings.qdrant_on_disk)
    return IndexLocation(path=folder, two_stage=two_stage_of(settings), on_disk=settings.qdrant_on_disk,
                         shards=settings.qdrant_shards, replicas=settings.qdrant_replicas,
                         write_consistency=settings.qdrant_write_consistency)
