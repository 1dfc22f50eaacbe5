"""Held-out evaluation: BM25 and sparse encoders, on the very same test queries, over the whole catalog.

Encoders are evaluated through the index (Qdrant Edge by default, a server by URL), exactly as they
will be served. An index already built for the same model and catalog is reused.

Example:
    >>> from sparsefit import load_catalog, load_judgments, split_queries, evaluate
    >>> catalog = load_catalog("examples/catalog.csv")                       # doctest: +SKIP
    >>> judgments = load_judgments("examples/judgments.csv", catalog)       # doctest: +SKIP
    >>> report = evaluate(catalog, judgments, split_queries(judgments), models=["splade-tiny"])  # doctest: +SKIP
    >>> report.mean("bm25")["ndcg@10"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from sparsefit.data import Catalog, Judgments, Split
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.bm25 import BM25Baseline
from sparsefit.evaluation.metrics import mean_metrics, per_query_metrics
from sparsefit.evaluation.report import Report, SystemResult
from sparsefit.index import SparseIndex, open_index
from sparsefit.models import Encoder, load_encoder
from sparsefit.progress import progress_bar

INDEX_FORMAT = 1  # bump when the way we index changes, so old indexes are rebuilt


def evaluate(
    catalog: Catalog,
    judgments: Judgments,
    split: Split,
    *,
    models: Sequence[str | Encoder] = ("splade-tiny",),
    bm25: bool = True,
    index_root: Path | None = None,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    collection: str = "catalog",
    retrieve_k: int = 100,
    batch_size: int = 64,
    max_seq_length: int = 128,
    architecture: str = "splade",
    show_progress: bool = True,
) -> Report:
    """Evaluate BM25 and each model on ``split.test`` queries; returns a :class:`Report`.

    Without ``index_root`` or ``qdrant_url`` the Edge indexes live in a temporary folder.
    """
    test = judgments.subset(set(split.test))
    keys = test.keys()
    if not keys:
        raise SparsefitError("the split has no test queries", hint="lower --test-fraction's complement or pass --test-judgments")
    queries = [test.query_text(key) for key in keys]
    qrels = test.qrels()
    threshold = judgments.scheme.relevant_threshold
    systems: list[SystemResult] = []

    if bm25:
        started = time.perf_counter()
        baseline = BM25Baseline(catalog.texts, catalog.ids)
        indexed = time.perf_counter()
        ranked = baseline.search(queries, k=retrieve_k)
        searched = time.perf_counter()
        run = dict(zip(keys, ranked))
        systems.append(_result("bm25", "bm25", qrels, run, threshold, {"index": indexed - started, "search": searched - indexed}))

    temporary = None
    if index_root is None and qdrant_url is None:
        import tempfile

        temporary = tempfile.TemporaryDirectory(prefix="sparsefit-index-")
        index_root = Path(temporary.name)
    try:
        for model in models:
            encoder = model if isinstance(model, Encoder) else load_encoder(
                model, architecture=architecture, max_seq_length=max_seq_length
            )
            seconds: dict[str, float] = {}
            with _catalog_index(
                encoder, catalog, index_root=index_root, url=qdrant_url, api_key=qdrant_api_key,
                collection=collection, batch_size=batch_size, show_progress=show_progress, seconds=seconds,
            ) as index:
                started = time.perf_counter()
                vectors = encoder.encode_queries(queries, batch_size=batch_size)
                hits = index.search_batch(vectors, limit=retrieve_k)
                seconds["search"] = time.perf_counter() - started
            run = {key: [(hit.product_id, hit.score) for hit in row] for key, row in zip(keys, hits)}
            systems.append(_result(encoder.name, "encoder", qrels, run, threshold, seconds))
    finally:
        if temporary is not None:
            temporary.cleanup()
    return Report(
        systems=systems,
        queries={key: text for key, text in zip(keys, queries)},
        catalog_size=len(catalog),
        scheme=judgments.scheme.describe(),
        relevant_threshold=threshold,
    )


def _result(name, kind, qrels, run, threshold, seconds) -> SystemResult:
    per_query = per_query_metrics(qrels, run, relevant_threshold=threshold)
    return SystemResult(name=name, kind=kind, per_query=per_query, mean=mean_metrics(per_query), seconds=seconds, run=run)


def index_name(model_name: str) -> str:
    """A folder- and collection-safe name for a model: ``runs/x/model`` → ``runs-x-model``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name).strip("-.") or "model"


def _catalog_index(
    encoder: Encoder,
    catalog: Catalog,
    *,
    index_root: Path | None,
    url: str | None,
    api_key: str | None,
    collection: str,
    batch_size: int,
    show_progress: bool,
    seconds: dict[str, float],
) -> SparseIndex:
    """Open the catalog's index for ``encoder``: reuse a complete one, else (re)build it."""
    name = index_name(encoder.name)
    wanted = {"format": INDEX_FORMAT, "model": encoder.fingerprint(), "catalog": catalog.fingerprint()}
    if url:
        index = open_index(url=url, api_key=api_key, collection=f"{collection}-{name}")
    else:
        index = open_index(path=Path(index_root) / name)
    meta = index.get_metadata()
    if meta.get("complete") and all(meta.get(k) == v for k, v in wanted.items()) and index.count() == len(catalog):
        seconds["encode"] = seconds["index"] = 0.0
        return index
    index.close()
    index = build_index(encoder, catalog, url=url, api_key=api_key, path=None if url else Path(index_root) / name,
                        collection=f"{collection}-{name}", batch_size=batch_size, show_progress=show_progress,
                        seconds=seconds)
    index.set_metadata({**wanted, "complete": True, "model_name": encoder.name})
    return index


def build_index(
    encoder: Encoder,
    catalog: Catalog,
    *,
    path: Path | None = None,
    url: str | None = None,
    api_key: str | None = None,
    collection: str = "catalog",
    batch_size: int = 64,
    chunk: int = 4096,
    show_progress: bool = True,
    seconds: dict[str, float] | None = None,
) -> SparseIndex:
    """Encode the whole catalog with ``encoder`` into a fresh index (recreated if it exists)."""
    seconds = seconds if seconds is not None else {}
    index = open_index(path=path, url=url, api_key=api_key, collection=collection, recreate=True)
    encode_time = upsert_time = 0.0
    with progress_bar(f"indexing {len(catalog):,} products with {encoder.name}", len(catalog), enabled=show_progress) as advance:
        for start in range(0, len(catalog), chunk):
            stop = min(start + chunk, len(catalog))
            began = time.perf_counter()
            vectors = encoder.encode_documents(catalog.texts[start:stop], batch_size=batch_size)
            encoded = time.perf_counter()
            payloads = [catalog.payload_of(i) for i in range(start, stop)]
            index.upsert(catalog.ids[start:stop], vectors, payloads)
            upsert_time += time.perf_counter() - encoded
            encode_time += encoded - began
            advance(stop - start)
    seconds["encode"] = encode_time
    seconds["index"] = upsert_time
    return index
