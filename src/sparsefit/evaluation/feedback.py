"""Relevance feedback, measured the way a shopper meets it, and its coefficients fitted on validation queries.

The simulated shopper sees the first page (the top ``page`` hits of the model), clicks the judged-relevant
products on it (score 1) and skips the others (score 0); the search runs again with that feedback
(Qdrant's relevance-feedback query, :mod:`sparsefit.index.feedback`), with the shown products left out.
What counts is the *unseen* results: nDCG@10 of the second page onwards, against the same search without
feedback (also with the shown products left out), each scored on the judged products not yet shown, on
the queries that still have a relevant one. Queries whose first page is all clicks or all skips give no
pair, so feedback leaves them as they were: they count, as they would for a real shopper.

Example:
    >>> strategy = fit_feedback(encoder, index, validation)                         # doctest: +SKIP
    >>> simulate_feedback(encoder, index, test, strategy)["ndcg@10"]               # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sparsefit.data import Judgments
from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.metrics import paired_test, per_query_metrics
from sparsefit.index import FeedbackStrategy, Filter, SparseIndex
from sparsefit.models import Encoder

C_GRID = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # c, with a = b = 1; c = 0 is no feedback at all


def simulate_feedback(
    encoder: Encoder,
    index: SparseIndex,
    judgments: Judgments,
    strategy: FeedbackStrategy,
    *,
    page: int = 10,
    retrieve_k: int = 100,
    batch_size: int = ENCODE_BATCH_SIZE,
    vectors=None,
) -> dict[str, Any]:
    """One round of simulated feedback on ``judgments``' queries: nDCG@10 of the unseen results with and without it.

    Returns ``{"queries", "with_pairs", "ndcg@10": {"without", "with"}, "paired_test", "per_query"}``.
    """
    started = time.perf_counter()
    keys = judgments.keys()
    if vectors is None:
        vectors = encoder.encode_queries([judgments.query_text(k) for k in keys], batch_size=batch_size)
    qrels = judgments.qrels(keys)
    threshold = judgments.scheme.relevant_threshold
    first = index.search_batch(vectors, limit=page)
    shown = [[h.product_id for h in hits] for hits in first]
    feedback = [[(pid, 1.0 if qrels[key].get(pid, 0.0) >= threshold else 0.0) for pid in pids] for key, pids in zip(keys, shown)]
    filters = [Filter(exclude_ids=tuple(pids)) if pids else None for pids in shown]
    without = index.search_batch(vectors, limit=retrieve_k, filters=filters)
    after = index.search_batch(vectors, limit=retrieve_k, filters=filters, feedback=feedback, strategy=strategy)
    unseen = {key: {pid: gain for pid, gain in qrels[key].items() if pid not in set(pids)} for key, pids in zip(keys, shown)}
    kept = [k for k in keys if any(g >= threshold for g in unseen[k].values())]
    runs = {name: {key: [(h.product_id, h.score) for h in row] for key, row in zip(keys, hits) if key in kept}
            for name, hits in (("without", without), ("with", after))}
    scores = {name: {q: m["ndcg@10"] for q, m in per_query_metrics({k: unseen[k] for k in kept}, run, relevant_threshold=threshold,
                                                                  metrics=("ndcg@10",)).items()}
              for name, run in runs.items()}
    pairs = sum(1 for key, items in zip(keys, feedback) if key in kept and len({s for _, s in items}) == 2)
    return {
        "queries": len(kept), "with_pairs": pairs, "page": page,
        "ndcg@10": {name: float(np.mean(list(s.values()))) if s else 0.0 for name, s in scores.items()},
        "paired_test": paired_test(scores["with"], scores["without"]) if kept else None,
        "per_query": scores, "seconds": time.perf_counter() - started,
    }


def fit_feedback(
    encoder: Encoder,
    index: SparseIndex,
    validation: Judgments,
    *,
    page: int = 10,
    batch_size: int = ENCODE_BATCH_SIZE,
) -> FeedbackStrategy:
    """The coefficient ``c`` (``a = b = 1``; with clicks and skips scored 1 and 0, ``b`` changes nothing) that gives
    the best nDCG@10 of the unseen results on the ``validation`` queries; ``c = 0`` (no feedback) is a candidate."""
    keys = validation.keys()
    if not keys:
        raise SparsefitError("no validation queries to fit the feedback coefficients on",
                             hint="keep --validation-queries above 0")
    vectors = encoder.encode_queries([validation.query_text(k) for k in keys], batch_size=batch_size)
    grid = []
    for c in C_GRID:
        result = simulate_feedback(encoder, index, validation, FeedbackStrategy(c=c), page=page, retrieve_k=10, vectors=vectors)
        grid.append({"c": c, "ndcg@10": round(result["ndcg@10"]["with"], 6)})
    best = max(grid, key=lambda g: g["ndcg@10"])  # the first of equal scores: the smaller c
    return FeedbackStrategy(c=best["c"], fitted={"queries": len(keys), "page": page, "metric": "ndcg@10 of the unseen results",
                                                  "score": best["ndcg@10"], "grid": grid})
