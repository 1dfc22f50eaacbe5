"""Qdrant's BM25 and hybrid retrieval on held-out queries, and fusion weights fitted on validation queries.

Every search here is a Qdrant query on the catalog index (BM25 and the model's vectors live side by
side in it); fusion happens in the engine. The weights of a hybrid are chosen on *validation*
queries, a part of the training queries that no test query is in (the trainer also keeps them out of
training, so the tuned model's leg is not flattered by queries it learned); the grid is small and
includes each leg alone, so a hybrid fitted this way is never worse than its better leg on the
validation queries, and the report can say "the tuned model needs no BM25 leg" when that is so.

Example:
    >>> fusion = fit_fusion(encoder, index, validation, method="rrf")          # doctest: +SKIP
    >>> evaluate_hybrid(encoder, index, test, fusion, name="hybrid (tuned)")   # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from sparsefit.data import Judgments
from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.metrics import per_query_metrics
from sparsefit.evaluation.report import SystemResult, score_run
from sparsefit.index import Fusion, SparseIndex
from sparsefit.index.fusion import FusionMethod
from sparsefit.indexing import index_bm25
from sparsefit.models import Encoder
from sparsefit.models.dense import DenseEncoder

QDRANT_BM25 = "bm25 (Qdrant)"
RRF_SIDE = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # the lighter leg's weight, the heavier one's being 1
RRF_K = (2, 60)  # Qdrant's default, and the classic constant of the RRF paper
SHARES = tuple(round(0.1 * i, 1) for i in range(11))  # formula: the learned leg's share of the weight


def evaluate_qdrant_bm25(index: SparseIndex, test: Judgments, *, retrieve_k: int = 100) -> SystemResult:
    """Qdrant's BM25 (the index's ``bm25`` vectors, IDF from the engine) on the queries of ``test``."""
    model = _bm25_of(index)
    keys = test.keys()
    started = time.perf_counter()
    hits = index.search_batch(None, limit=retrieve_k, bm25=model.queries([test.query_text(k) for k in keys]))
    run = {key: [(h.product_id, h.score) for h in row] for key, row in zip(keys, hits)}
    return score_run(QDRANT_BM25, "bm25", test, run, {"search": time.perf_counter() - started})


def evaluate_dense(dense: DenseEncoder, index: SparseIndex, test: Judgments, *, retrieve_k: int = 100) -> SystemResult:
    """The dense model alone (the index's ``dense`` vectors, cosine) on the queries of ``test``."""
    keys = test.keys()
    started = time.perf_counter()
    hits = index.search_batch(None, limit=retrieve_k, dense=dense.encode([test.query_text(k) for k in keys]))
    run = {key: [(h.product_id, h.score) for h in row] for key, row in zip(keys, hits)}
    return score_run(f"dense ({dense.name})", "dense", test, run, {"search": time.perf_counter() - started})


def evaluate_hybrid(
    encoder: Encoder,
    index: SparseIndex,
    test: Judgments,
    fusion: Fusion,
    *,
    name: str,
    retrieve_k: int = 100,
    batch_size: int = ENCODE_BATCH_SIZE,
    dense: DenseEncoder | None = None,
) -> SystemResult:
    """The model's vectors and Qdrant's BM25 (and ``dense``'s, a third leg), fused by ``fusion`` in one Qdrant
    query per test query."""
    keys = test.keys()
    started = time.perf_counter()
    learned, lexical, embedded = _query_vectors(encoder, index, [test.query_text(k) for k in keys], batch_size, dense)
    hits = index.search_batch(learned, limit=retrieve_k, bm25=lexical, dense=embedded, fusion=fusion)
    run = {key: [(h.product_id, h.score) for h in row] for key, row in zip(keys, hits)}
    kind = "hybrid" if dense is None else "hybrid-dense"
    return score_run(name, kind, test, run, {"search": time.perf_counter() - started})


def fit_fusion(
    encoder: Encoder,
    index: SparseIndex,
    validation: Judgments,
    *,
    method: FusionMethod = "rrf",
    retrieve_k: int = 100,
    batch_size: int = ENCODE_BATCH_SIZE,
    dense: DenseEncoder | None = None,
) -> Fusion:
    """The fusion of ``method`` whose weights give the best mean nDCG@10 on the ``validation`` queries
    (over the model, BM25 and, with ``dense``, the dense model: then each leg's weight in 0, 0.5, 1).

    rrf: the lighter leg's weight in :data:`RRF_SIDE` (the heavier's 1) and k in :data:`RRF_K`; formula: each
    leg's scale is the median of its top score on the validation queries, the learned leg's share of the
    weight in :data:`SHARES`; dbsf has nothing to fit. Ties go to the earlier candidate (the learned leg
    heavier first). The result's ``fitted`` records the queries, every candidate's score and the choice.
    """
    keys = validation.keys()
    if not keys:
        raise SparsefitError("no validation queries to fit the fusion weights on",
                             hint="keep --validation-queries above 0, or give the fusion weights yourself")
    learned, lexical, embedded = _query_vectors(encoder, index, [validation.query_text(k) for k in keys], batch_size, dense)
    qrels = validation.qrels(keys)
    threshold = validation.scheme.relevant_threshold

    def score(fusion: Fusion) -> float:
        hits = index.search_batch(learned, limit=min(retrieve_k, 10), bm25=lexical, dense=embedded, fusion=fusion)
        run = {key: [(h.product_id, h.score) for h in row] for key, row in zip(keys, hits)}
        per_query = per_query_metrics(qrels, run, relevant_threshold=threshold, metrics=("ndcg@10",))
        return float(np.mean([m["ndcg@10"] for m in per_query.values()]))

    candidates = list(_candidates(method, index, learned, lexical) if embedded is None
                      else _three_way_candidates(method, index, learned, lexical, embedded))
    scored = [(score(f), f) for f in candidates]
    best_score, best = max(scored, key=lambda pair: pair[0])  # max keeps the first of equal scores
    fitted = {"queries": len(keys), "metric": "ndcg@10", "score": round(best_score, 6),
              "grid": [{**_settings(f), "ndcg@10": round(s, 6)} for s, f in scored]}
    return Fusion(best.method, best.weights, best.k, best.scales, best.prefetch, fitted)


def _candidates(method: FusionMethod, index: SparseIndex, learned: sp.csr_matrix, lexical: sp.csr_matrix) -> Iterable[Fusion]:
    if method == "dbsf":
        yield Fusion("dbsf")
    elif method == "rrf":
        for k in RRF_K:
            for side in reversed(RRF_SIDE):  # (1, 1), (1, 0.7), ... (1, 0): the learned leg heavier first
                yield Fusion("rrf", (1.0, side), k=k)
            for side in reversed(RRF_SIDE[:-1]):
                yield Fusion("rrf", (side, 1.0), k=k)
    else:
        scales = tuple(_median_top_score(index, leg) for leg in (dict(vectors=learned), dict(vectors=None, bm25=lexical)))
        for share in reversed(SHARES):
            yield Fusion("formula", (share, round(1 - share, 1)) if share < 1 else (1.0, 0.0), scales=scales)


def _three_way_candidates(method: FusionMethod, index: SparseIndex, learned: sp.csr_matrix, lexical: sp.csr_matrix,
                          embedded: np.ndarray) -> Iterable[Fusion]:
    """Three legs: each weight in 0, 0.5, 1 (not all 0; the learned leg heavier first); rrf with k 2 and 60."""
    grid = sorted({w for w in itertools.product((1.0, 0.5, 0.0), repeat=3) if any(w)}, key=lambda w: (-w[0], -w[1], -w[2]))
    if method == "dbsf":
        yield Fusion("dbsf", (1.0, 1.0, 1.0))
    elif method == "rrf":
        for k in RRF_K:
            for weights in grid:
                yield Fusion("rrf", weights, k=k)
    else:
        legs = (dict(vectors=learned), dict(vectors=None, bm25=lexical), dict(vectors=None, dense=embedded))
        scales = tuple(_median_top_score(index, leg) for leg in legs)
        for weights in grid:
            yield Fusion("formula", weights, scales=scales)


def _median_top_score(index: SparseIndex, leg: dict) -> float:
    """The median over queries of one leg's best score (queries it finds nothing for left out); 1 if none."""
    tops = [row[0].score for row in index.search_batch(limit=1, **leg) if row]
    return float(np.median(tops)) if tops and np.median(tops) > 0 else 1.0


def _settings(fusion: Fusion) -> dict:
    data = fusion.to_json()
    data.pop("fitted", None)
    return data


def _query_vectors(encoder: Encoder, index: SparseIndex, texts: list[str], batch_size: int,
                   dense: DenseEncoder | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None]:
    embedded = dense.encode(texts) if dense is not None else None
    return encoder.encode_queries(texts, batch_size=batch_size), _bm25_of(index).queries(texts), embedded


def _bm25_of(index: SparseIndex):
    model = index_bm25(index)
    if model is None:
        raise SparsefitError("the index has no BM25 vectors (it was built before sparsefit indexed Qdrant's BM25)",
                             hint="rebuild it: train again, or run `sparsefit index` for it")
    return model
