"""Per-query IR metrics and a paired significance test, with exact, documented conventions.

Inputs
    ``qrels``: query -> {doc id: gain}. Every listed doc is *judged*; gain 0 means judged
    not relevant. Gains may be graded floats (e.g. ESCI mapped to 0, 0.33, 1, ...).
    ``run``: query -> ranked [(doc id, score), ...], best first. The given order is the
    ranking: it is never re-sorted, and scores are ignored. The caller passes each doc at
    most once per query (a duplicate raises ``ValueError``).

Definitions (rank i counts from 1; only the top k of the run are looked at)
    ``ndcg@k``: DCG@k = sum_{i<=k} gain_i / log2(i + 1), with *linear* gains (the
    Järvelin-Kekäläinen form used by trec_eval ``ndcg_cut`` and by ranx ``"ndcg"``; not
    the Burges 2^g - 1 form, ranx ``"ndcg_burges"``). Unjudged docs have gain 0. The ideal
    DCG@k uses ALL judged docs of the query -- their gains sorted descending, top k --
    whether retrieved or not. nDCG@k = DCG@k / IDCG@k, and 0 when IDCG@k is 0 (no judged
    doc with gain > 0). Negative gains are not supported.
    Binary metrics call a doc *relevant* when its gain >= ``relevant_threshold`` (> 0):
    ``mrr@k``: 1 / rank of the first relevant doc in the top k, else 0.
    ``recall@k``: relevant docs in the top k / all relevant judged docs (0 if there are none).
    ``p@k``: relevant docs in the top k / k -- the denominator is always k, also when the
    run is shorter (trec_eval convention, same as ranx ``"precision@k"``).

Scope: every query in ``qrels`` gets a score; a query missing from the run (or with an
empty ranking) scores 0 on every metric. Run queries absent from ``qrels`` are ignored.

These match ranx 0.3.21 (``ndcg@k``, ``mrr@k``, ``recall@k``, ``precision@k``) per query;
note ranx stores judgments as int and drops judgments below its ``rel_lvl`` (default 1),
so graded float gains must be scaled to integers before comparing with it.

Example:
    >>> qrels = {"q1": {"a": 2.0, "b": 1.0, "c": 0.0}}
    >>> run = {"q1": [("a", 9.1), ("c", 5.0), ("b", 1.2)]}
    >>> scores = per_query_metrics(qrels, run, relevant_threshold=1.0)
    >>> round(scores["q1"]["ndcg@10"], 4), scores["q1"]["mrr@10"], scores["q1"]["p@10"]
    (0.9502, 1.0, 0.2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Qrels = Mapping[str, Mapping[str, float]]
Run = Mapping[str, Sequence[tuple[str, float]]]
PerQuery = Mapping[str, Mapping[str, float]]

METRICS: tuple[str, ...] = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "p@10")
METRIC_FAMILIES: tuple[str, ...] = ("ndcg", "mrr", "recall", "p")

_CHUNK = 2000  # resamples generated at once in paired_test (bounds memory)


# -- metric names ---------------------------------------------------------------------------


def parse_metric(name: str) -> tuple[str, int]:
    """Split a metric name like ``"ndcg@10"`` into ``(family, k)``; raise ``ValueError`` if unknown.

    Example:
        >>> parse_metric("recall@100")
        ('recall', 100)
    """
    family, sep, k_text = name.partition("@")
    if not sep or family not in METRIC_FAMILIES or not k_text.isdigit() or int(k_text) < 1:
        raise ValueError(
            f"unknown metric {name!r}: use <family>@<k> with family in {METRIC_FAMILIES} and k >= 1"
        )
    return family, int(k_text)


# -- single-query metrics -------------------------------------------------------------------


def _discounts(n: int) -> np.ndarray:
    """1 / log2(i + 1) for ranks i = 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _dcg(gains: Sequence[float]) -> float:
    """Linear-gain DCG of gains listed in rank order."""
    if len(gains) == 0:
        return 0.0
    return float(np.dot(np.asarray(gains, dtype=np.float64), _discounts(len(gains))))


def ndcg_at_k(judged: Mapping[str, float], ranked: Sequence[str], k: int) -> float:
    """nDCG@k of one ranking; the ideal DCG uses every judged doc (0 when it is 0).

    Example:
        >>> ndcg_at_k({"a": 1.0, "b": 1.0}, ["a"], 10)  # "b" not retrieved: < 1
        0.6131471927654584
    """
    ideal = _dcg(sorted(judged.values(), reverse=True)[:k])
    if ideal <= 0.0:
        return 0.0
    return _dcg([judged.get(doc, 0.0) for doc in ranked[:k]]) / ideal


def reciprocal_rank_at_k(relevant: Sequence[bool], k: int) -> float:
    """1 / rank of the first True among the first k flags, else 0.

    Example:
        >>> reciprocal_rank_at_k([False, False, True], 10)
        0.3333333333333333
    """
    for rank, is_relevant in enumerate(relevant[:k], start=1):
        if is_relevant:
            return 1.0 / rank
    return 0.0


def recall_at_k(relevant: Sequence[bool], n_relevant: int, k: int) -> float:
    """Relevant docs in the top k / all relevant judged docs (0 if there are none).

    Example:
        >>> recall_at_k([True, False, True], 4, 10)
        0.5
    """
    if n_relevant == 0:
        return 0.0
    return sum(relevant[:k]) / n_relevant


def precision_at_k(relevant: Sequence[bool], k: int) -> float:
    """Relevant docs in the top k / k (the denominator is always k).

    Example:
        >>> precision_at_k([True, False, True], 10)
        0.2
    """
    return sum(relevant[:k]) / k


def _unique_ranking(query: str, ranking: Sequence[tuple[str, float]]) -> list[str]:
    """Doc ids of a ranking, in the given order; raise ``ValueError`` on duplicates."""
    ranked = [doc for doc, _score in ranking]
    if len(set(ranked)) != len(ranked):
        raise ValueError(f"run for query {query!r} lists a doc more than once; pass unique docs")
    return ranked


def _query_metrics(
    judged: Mapping[str, float],
    ranked: Sequence[str],
    parsed: Sequence[tuple[str, str, int]],
    relevant_threshold: float,
) -> dict[str, float]:
    """All requested metrics for one query."""
    relevant = [judged.get(doc, 0.0) >= relevant_threshold for doc in ranked]
    n_relevant = sum(gain >= relevant_threshold for gain in judged.values())
    out: dict[str, float] = {}
    for name, family, k in parsed:
        if family == "ndcg":
            out[name] = ndcg_at_k(judged, ranked, k)
        elif family == "mrr":
            out[name] = reciprocal_rank_at_k(relevant, k)
        elif family == "recall":
            out[name] = recall_at_k(relevant, n_relevant, k)
        else:
            out[name] = precision_at_k(relevant, k)
    return out


# -- public API -----------------------------------------------------------------------------


def per_query_metrics(
    qrels: Qrels,
    run: Run,
    *,
    relevant_threshold: float,
    metrics: Sequence[str] = METRICS,
) -> dict[str, dict[str, float]]:
    """Score every query of ``qrels`` (missing from the run -> 0): query -> metric -> value.

    Example:
        >>> qrels = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}
        >>> per_query_metrics(qrels, {"q1": [("x", 2.0), ("a", 1.0)]},
        ...                   relevant_threshold=1.0, metrics=["mrr@10", "recall@10"])
        {'q1': {'mrr@10': 0.5, 'recall@10': 1.0}, 'q2': {'mrr@10': 0.0, 'recall@10': 0.0}}
    """
    if not relevant_threshold > 0:
        raise ValueError(f"relevant_threshold must be > 0, got {relevant_threshold!r}")
    parsed = [(name, *parse_metric(name)) for name in metrics]
    return {
        query: _query_metrics(
            judged, _unique_ranking(query, run.get(query, ())), parsed, relevant_threshold
        )
        for query, judged in qrels.items()
    }


def mean_metrics(per_query: PerQuery) -> dict[str, float]:
    """Average each metric over the queries (metric names taken from the first query).

    Example:
        >>> mean_metrics({"q1": {"mrr@10": 1.0}, "q2": {"mrr@10": 0.5}})
        {'mrr@10': 0.75}
    """
    if not per_query:
        return {}
    names = list(next(iter(per_query.values())))
    n = len(per_query)
    return {name: math.fsum(row[name] for row in per_query.values()) / n for name in names}


def _sign_flip_p_value(diffs: np.ndarray, n_resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of mean(diffs) under random sign flips, (hits + 1) / (n_resamples + 1)."""
    n = diffs.size
    total = float(diffs.sum())
    observed = abs(total / n)
    tolerance = 1e-12 * max(1.0, float(np.abs(diffs).max()))
    hits = 0
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        random_bytes = rng.integers(0, 256, (size, (n + 7) // 8), dtype=np.uint8)
        flipped = np.unpackbits(random_bytes, axis=1, count=n).astype(np.float64)
        means = (total - 2.0 * (flipped @ diffs)) / n  # flipped docs change sign
        hits += int(np.count_nonzero(np.abs(means) >= observed - tolerance))
    return (hits + 1) / (n_resamples + 1)


def _bootstrap_ci95(diffs: np.ndarray, n_resamples: int, rng: np.random.Generator) -> list[float]:
    """Percentile 95% interval of mean(diffs) over paired bootstrap resamples of queries."""
    n = diffs.size
    index_type = np.int16 if n < np.iinfo(np.int16).max else np.int64
    means = []
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        indices = rng.integers(0, n, (size, n), dtype=index_type)
        means.append(np.take(diffs, indices).mean(axis=1))
    low, high = np.percentile(np.concatenate(means), [2.5, 97.5])
    return [float(low), float(high)]


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    n_resamples: int = 10000,
    seed: int = 0,
) -> dict:
    """Paired two-sided sign-flip randomization test of a - b over the common queries.

    Returns ``{"mean_diff", "p_value", "n_queries", "ci95": [lo, hi]}``; the interval is a
    paired percentile bootstrap. The same seed gives the same result.

    Example:
        >>> a = {f"q{i}": 0.6 for i in range(50)}
        >>> b = {f"q{i}": 0.4 for i in range(50)}
        >>> result = paired_test(a, b, n_resamples=2000)
        >>> round(result["mean_diff"], 6), result["n_queries"], result["p_value"] < 0.001
        (0.2, 50, True)
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("paired_test needs at least one query scored by both systems")
    diffs = np.array([a[q] - b[q] for q in common], dtype=np.float64)
    rng = np.random.default_rng(seed)
    return {
        "mean_diff": float(diffs.mean()),
        "p_value": _sign_flip_p_value(diffs, n_resamples, rng),
        "n_queries": len(common),
        "ci95": _bootstrap_ci95(diffs, n_resamples, rng),
    }
