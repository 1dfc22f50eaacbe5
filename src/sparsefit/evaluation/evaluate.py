"""Held-out evaluation: BM25 and sparse encoders, on the very same test queries, over the whole catalog.

Encoders are evaluated through the index (Qdrant Edge by default, a server by URL), exactly as they
will be served. An index already built for the same model and catalog is reused.

Example:
    >>> from sparsefit import load_catalog, load_judgments, split_queries, evaluate
    >>> catalog = load_catalog("examples/catalog.csv")                       # doctest: +SKIP
    >>> judgments = load_judgments("examples/judged_queries.csv", catalog)       # doctest: +SKIP
    >>> report = evaluate(catalog, judgments, split_queries(judgments), models=["splade-tiny"])  # doctest: +SKIP
    >>> report.mean("bm25")["ndcg@10"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from sparsefit.data import Catalog, Judgments, Split
from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.bm25 import BM25Baseline
from sparsefit.evaluation.report import Report, SystemResult, score_run
from sparsefit.index import IndexLocation, SparseIndex
from sparsefit.indexing import catalog_index
from sparsefit.models import Encoder, load_encoder


def evaluate(
    catalog: Catalog,
    judgments: Judgments,
    split: Split,
    *,
    models: Sequence[str | Encoder] = ("splade-tiny",),
    bm25: bool = True,
    location: IndexLocation | None = None,
    retrieve_k: int = 100,
    batch_size: int = ENCODE_BATCH_SIZE,
    max_seq_length: int = 128,
    architecture: str = "splade",
    show_progress: bool = True,
    device: str = "cpu",
    retrieval: str = "sparse",
    fusion: str = "rrf",
    validation_queries: int = 500,
    seed: int = 13,
    dense: str | None = None,
) -> Report:
    """Evaluate BM25 and each model on ``split.test`` queries; returns a :class:`Report`.

    ``retrieval`` ``bm25`` adds Qdrant's BM25 (the first model's index) beside bm25s; ``hybrid`` also adds each
    model fused with it in Qdrant, the ``fusion`` weights fitted on ``validation_queries`` of the split's training
    queries (never a test query; these models were not trained on them). ``dense``: a dense model indexed too,
    reported alone and, with ``hybrid``, fused three ways with each model and BM25.

    Each model's index is a :meth:`~IndexLocation.child` of ``location`` (reused while nothing changed);
    without ``location`` the Edge indexes live in a temporary folder. A location with ``two_stage``
    searches the models the way such an index serves (see :class:`~sparsefit.index.TwoStage`).
    """
    from sparsefit.data.split import validation_keys
    from sparsefit.evaluation.hybrid import evaluate_dense, evaluate_hybrid, evaluate_qdrant_bm25, fit_fusion
    from sparsefit.models.aliases import ALIASES
    from sparsefit.models.dense import load_dense

    test = judgments.subset(set(split.test))
    if not test.keys():
        raise SparsefitError("the split has no test queries", hint="lower --test-fraction's complement or pass --test-judgments")
    if retrieval not in ("sparse", "bm25", "hybrid"):
        raise SparsefitError(f"unknown retrieval {retrieval!r}", hint="use sparse, bm25 or hybrid")
    validation = None
    if retrieval == "hybrid":
        validation = judgments.subset(set(validation_keys(judgments.subset(set(split.train)), validation_queries, seed)))
        if not validation.keys():
            raise SparsefitError("hybrid evaluation fits its fusion weights on training queries, and the split has none",
                                 hint="use a split with training queries (a random split), or --retrieval sparse")
    systems: list[SystemResult] = []
    if bm25:
        systems.append(evaluate_bm25(catalog, test, retrieve_k=retrieve_k))
    temporary = None
    if location is None:
        import tempfile

        temporary = tempfile.TemporaryDirectory(prefix="sparsefit-index-")
        location = IndexLocation(path=Path(temporary.name))
    dense_model = load_dense(dense, device=device, max_seq_length=max_seq_length) if dense else None
    try:
        names: set[str] = set()
        for model in models:
            encoder = model if isinstance(model, Encoder) else load_encoder(
                model, architecture=architecture, max_seq_length=max_seq_length, device=device
            )
            if not isinstance(model, Encoder) and str(model) not in ALIASES and (encoder.name in ALIASES or encoder.name in names):
                encoder.name = str(model)  # a fine-tuned folder keeps its base model's name: its row says which folder
            if encoder.name in names:
                raise SparsefitError(f"two models to evaluate are named {encoder.name!r}", hint="pass each model once")
            names.add(encoder.name)
            seconds: dict[str, float] = {}
            index, _ = catalog_index(encoder, catalog, location.child(index_name(encoder.name)), batch_size=batch_size,
                                     show_progress=show_progress, seconds=seconds, dense=dense_model)
            with index:
                if retrieval != "sparse" and not any(s.kind == "bm25" and s.name != "bm25" for s in systems):
                    systems.append(evaluate_qdrant_bm25(index, test, retrieve_k=retrieve_k))
                if dense_model is not None and not any(s.kind == "dense" for s in systems):
                    systems.append(evaluate_dense(dense_model, index, test, retrieve_k=retrieve_k))
                systems.append(evaluate_encoder(encoder, index, test, retrieve_k=retrieve_k, batch_size=batch_size,
                                                seconds=seconds))
                third_legs = [] if validation is None else [None] + ([dense_model] if dense_model is not None else [])
                for leg in third_legs:  # hybrid with BM25, and three ways with the dense model too
                    fitted = fit_fusion(encoder, index, validation, method=fusion, batch_size=batch_size, dense=leg)
                    label = f"hybrid ({encoder.name})" if leg is None else f"hybrid ({encoder.name} + dense)"
                    systems.append(evaluate_hybrid(encoder, index, test, fitted, name=label, retrieve_k=retrieve_k,
                                                   batch_size=batch_size, dense=leg))
    finally:
        if temporary is not None:
            temporary.cleanup()
    return make_report(systems, test, len(catalog))


def make_report(systems: list[SystemResult], test: Judgments, catalog_size: int) -> Report:
    """A :class:`Report` of ``systems`` scored on the queries of ``test``."""
    return Report(
        systems=systems,
        queries={key: test.query_text(key) for key in test.keys()},
        catalog_size=catalog_size,
        scheme=test.scheme.describe(),
        relevant_threshold=test.scheme.relevant_threshold,
    )


def evaluate_bm25(catalog: Catalog, test: Judgments, *, retrieve_k: int = 100) -> SystemResult:
    """BM25 (bm25s) over the whole catalog on the queries of ``test``."""
    keys = test.keys()
    started = time.perf_counter()
    baseline = BM25Baseline(catalog.texts, catalog.ids)
    indexed = time.perf_counter()
    ranked = baseline.search([test.query_text(k) for k in keys], k=retrieve_k)
    seconds = {"index": indexed - started, "search": time.perf_counter() - indexed}
    return score_run("bm25", "bm25", test, dict(zip(keys, ranked)), seconds)


def evaluate_encoder(
    encoder: Encoder,
    index: SparseIndex,
    test: Judgments,
    *,
    name: str | None = None,
    retrieve_k: int = 100,
    batch_size: int = ENCODE_BATCH_SIZE,
    seconds: dict[str, float] | None = None,
) -> SystemResult:
    """Search ``index`` (the catalog encoded by ``encoder``) with the queries of ``test`` and score."""
    keys = test.keys()
    seconds = dict(seconds or {})
    started = time.perf_counter()
    vectors = encoder.encode_queries([test.query_text(k) for k in keys], batch_size=batch_size)
    hits = index.search_batch(vectors, limit=retrieve_k)
    seconds["search"] = time.perf_counter() - started
    run = {key: [(hit.product_id, hit.score) for hit in row] for key, row in zip(keys, hits)}
    return score_run(name or encoder.name, "encoder", test, run, seconds)


def index_name(model_name: str) -> str:
    """A folder- and collection-safe name for a model: ``runs/x/model`` → ``runs-x-model``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name).strip("-.") or "model"
