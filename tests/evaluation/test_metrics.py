"""Tests for sparsefit.evaluation.metrics: hand-computed cases, ranx cross-check, paired test."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from sparsefit.evaluation.metrics import (
    METRICS,
    mean_metrics,
    paired_test,
    parse_metric,
    per_query_metrics,
)

# Graded gains as integer labels / 3: 0, 0.33, 0.67, 1, 1.33, 1.67, 2.
SCALE = 3


def _random_case(n_queries: int, seed: int) -> tuple[dict, dict, dict]:
    """Random integer labels, float gains (labels / SCALE) and runs with distinct scores."""
    rng = random.Random(seed)
    labels: dict[str, dict[str, int]] = {}
    runs: dict[str, list[tuple[str, float]]] = {}
    for q in range(n_queries):
        docs = [f"d{q}_{i}" for i in range(rng.randint(20, 150))]
        judged = rng.sample(docs, rng.randint(1, min(40, len(docs))))
        labels[f"q{q}"] = {d: rng.choice([0, 0, 1, 2, 3, 3, 5, 6]) for d in judged}
        labels[f"q{q}"][judged[0]] = max(labels[f"q{q}"][judged[0]], 3)  # >= 1 relevant
        ranked = rng.sample(docs, rng.randint(0, min(120, len(docs))))
        runs[f"q{q}"] = [(d, 1000.0 - i) for i, d in enumerate(ranked)]  # distinct, best first
    gains = {q: {d: lab / SCALE for d, lab in docs.items()} for q, docs in labels.items()}
    return labels, gains, runs


# -- ranx cross-check ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::Warning")  # numba's uint64 hash cast inside ranx
@pytest.mark.parametrize("threshold", [1.0, 2.0])
def test_matches_ranx_per_query(threshold: float) -> None:
    ranx = pytest.importorskip("ranx")
    labels, gains, runs = _random_case(n_queries=80, seed=int(threshold))
    ours = per_query_metrics(gains, runs, relevant_threshold=threshold)

    # ranx stores judgments as int and keeps those >= rel_lvl: pass the integer labels for
    # nDCG (scale invariant) and thresholded 0/1 labels for the binary metrics.
    non_empty = [q for q in labels if runs[q]]  # ranx cannot take an empty ranking
    run = ranx.Run({q: dict(runs[q]) for q in non_empty})
    graded = ranx.Qrels({q: labels[q] for q in non_empty})
    binary = ranx.Qrels(
        {q: {d: int(g >= threshold) for d, g in gains[q].items()} for q in non_empty}
    )
    ranx_graded = {"ndcg@10": ranx.evaluate(graded, run, "ndcg@10", return_mean=False)}
    ranx_binary = ranx.evaluate(
        binary, run, ["mrr@10", "recall@10", "recall@100", "precision@10"], return_mean=False
    )
    names = {"ndcg@10": "ndcg@10", "mrr@10": "mrr@10", "recall@10": "recall@10",
             "recall@100": "recall@100", "p@10": "precision@10"}
    ranx_scores = {**ranx_graded, **ranx_binary}
    assert len(non_empty) >= 50
    query_ids = list(run.get_query_ids())
    assert query_ids == list(graded.get_query_ids()) == list(binary.get_query_ids())
    for i, q in enumerate(query_ids):
        for ours_name, ranx_name in names.items():
            assert ours[q][ours_name] == pytest.approx(ranx_scores[ranx_name][i], abs=1e-9), (
                q, ours_name)
    for q in set(labels) - set(non_empty):
        assert all(v == 0.0 for v in ours[q].values())


@pytest.mark.filterwarnings("ignore::Warning")
def test_our_ndcg_is_ranx_linear_gain_ndcg_not_the_exponential_one() -> None:
    """sparsefit's nDCG against ranx on a case where the two gain conventions disagree: it must equal ranx's
    "ndcg" (gain = label) and differ from ranx's "ndcg_burges" (gain = 2^label - 1)."""
    ranx = pytest.importorskip("ranx")
    labels = {"q": {"a": 1, "b": 3, "x": 0}}
    ranking = [("a", 3.0), ("x", 2.0), ("b", 1.0)]  # linear 2.5 / 3.63 = 0.69, exponential 4.5 / 7.63 = 0.59
    qrels, run = ranx.Qrels(labels), ranx.Run({"q": dict(ranking)})
    ours = per_query_metrics({"q": {d: g / SCALE for d, g in labels["q"].items()}}, {"q": ranking},
                             relevant_threshold=1 / SCALE)["q"]
    linear = ranx.evaluate(qrels, run, "ndcg@10")
    exponential = ranx.evaluate(qrels, run, "ndcg_burges@10")
    assert abs(linear - exponential) > 0.05  # the case tells the conventions apart
    assert ours["ndcg@10"] == pytest.approx(linear, abs=1e-9)
    binary = ranx.Qrels({"q": {d: int(g >= 1) for d, g in labels["q"].items()}})
    for name, ranx_name in (("mrr@10", "mrr@10"), ("recall@10", "recall@10"), ("p@10", "precision@10")):
        assert ours[name] == pytest.approx(ranx.evaluate(binary, run, ranx_name), abs=1e-9), name


# -- hand-computed cases ---------------------------------------------------------------------


def test_perfect_ranking_scores_one() -> None:
    qrels = {"q": {"a": 2.0, "b": 1.0, "c": 0.33, "n": 0.0}}
    run = {"q": [("a", 3.0), ("b", 2.0), ("c", 1.0)]}
    scores = per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]
    assert scores["ndcg@10"] == pytest.approx(1.0)
    assert scores["mrr@10"] == 1.0
    assert scores["recall@10"] == 1.0 and scores["recall@100"] == 1.0
    assert scores["p@10"] == pytest.approx(0.2)  # denominator is always 10


def test_ideal_dcg_counts_unretrieved_relevant_doc() -> None:
    qrels = {"q": {"a": 1.0, "b": 2.0}}
    run = {"q": [("a", 1.0), ("x", 0.5)]}
    scores = per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]
    expected = 1.0 / (2.0 + 1.0 / math.log2(3))
    assert scores["ndcg@10"] == pytest.approx(expected)
    assert scores["recall@10"] == 0.5


def test_graded_ndcg_by_hand() -> None:
    qrels = {"q": {"a": 2.0, "b": 1.0, "c": 0.0}}
    run = {"q": [("c", 3.0), ("b", 2.0), ("a", 1.0)]}
    dcg = 0.0 + 1.0 / math.log2(3) + 2.0 / math.log2(4)
    idcg = 2.0 + 1.0 / math.log2(3)
    scores = per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]
    assert scores["ndcg@10"] == pytest.approx(dcg / idcg)
    assert scores["mrr@10"] == 0.5


def test_run_order_is_kept_not_resorted_by_score() -> None:
    qrels = {"q": {"a": 1.0}}
    run = {"q": [("x", 0.1), ("a", 9.0)]}  # scores disagree with order: order wins
    assert per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]["mrr@10"] == 0.5


def test_cutoffs() -> None:
    qrels = {"q": {"hit": 1.0}}
    run = {"q": [(f"x{i}", -i) for i in range(10)] + [("hit", -10.0)]}  # rank 11
    scores = per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]
    assert scores["mrr@10"] == 0.0 and scores["ndcg@10"] == 0.0 and scores["p@10"] == 0.0
    assert scores["recall@10"] == 0.0 and scores["recall@100"] == 1.0


def test_threshold_decides_binary_relevance() -> None:
    qrels = {"q": {"s": 0.5, "e": 1.0}}
    run = {"q": [("s", 2.0), ("e", 1.0)]}
    assert per_query_metrics(qrels, run, relevant_threshold=1.0)["q"]["mrr@10"] == 0.5
    assert per_query_metrics(qrels, run, relevant_threshold=0.5)["q"]["mrr@10"] == 1.0


def test_query_missing_from_run_scores_zero_and_extra_run_queries_ignored() -> None:
    qrels = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}
    run = {"q1": [("a", 1.0)], "other": [("b", 1.0)]}
    scores = per_query_metrics(qrels, run, relevant_threshold=1.0)
    assert set(scores) == {"q1", "q2"}
    assert scores["q2"] == {name: 0.0 for name in METRICS}
    assert scores["q1"]["ndcg@10"] == 1.0


def test_query_without_positive_gain_scores_zero() -> None:
    scores = per_query_metrics({"q": {"a": 0.0}}, {"q": [("a", 1.0)]}, relevant_threshold=1.0)
    assert scores["q"] == {name: 0.0 for name in METRICS}


def test_duplicate_docs_in_run_are_rejected() -> None:
    with pytest.raises(ValueError, match="more than once"):
        per_query_metrics({"q": {"a": 1.0}}, {"q": [("a", 2.0), ("a", 1.0)]},
                          relevant_threshold=1.0)


@pytest.mark.parametrize("bad", ["ndcg", "map@10", "p@0", "recall@x"])
def test_unknown_metric_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        per_query_metrics({"q": {"a": 1.0}}, {}, relevant_threshold=1.0, metrics=[bad])


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="relevant_threshold"):
        per_query_metrics({"q": {"a": 1.0}}, {}, relevant_threshold=0.0)


def test_custom_metric_list_and_parse() -> None:
    assert parse_metric("p@5") == ("p", 5)
    scores = per_query_metrics({"q": {"a": 1.0}}, {"q": [("a", 1.0)]}, relevant_threshold=1.0,
                               metrics=["p@1", "ndcg@3"])
    assert scores == {"q": {"p@1": 1.0, "ndcg@3": 1.0}}


def test_mean_metrics() -> None:
    per_query = {"q1": {"ndcg@10": 1.0, "p@10": 0.1}, "q2": {"ndcg@10": 0.0, "p@10": 0.3}}
    assert mean_metrics(per_query) == pytest.approx({"ndcg@10": 0.5, "p@10": 0.2})
    assert mean_metrics({}) == {}


# -- paired test -----------------------------------------------------------------------------


def test_paired_identical_systems() -> None:
    a = {f"q{i}": v for i, v in enumerate(np.random.default_rng(0).random(300))}
    result = paired_test(a, dict(a))
    assert result["mean_diff"] == 0.0
    assert result["p_value"] == pytest.approx(1.0)
    assert result["n_queries"] == 300
    assert result["ci95"] == [0.0, 0.0]


def test_paired_uniformly_better_system() -> None:
    rng = np.random.default_rng(1)
    b = {f"q{i}": float(v) for i, v in enumerate(rng.random(200) * 0.8)}
    a = {q: v + 0.05 + 0.01 * rng.random() for q, v in b.items()}
    result = paired_test(a, b)
    assert result["p_value"] < 0.001
    assert result["mean_diff"] > 0.05
    lo, hi = result["ci95"]
    assert 0.05 < lo <= result["mean_diff"] <= hi < 0.06


def test_paired_noise_is_not_significant_and_sign_symmetric() -> None:
    rng = np.random.default_rng(2)
    a = {f"q{i}": float(v) for i, v in enumerate(rng.random(500))}
    b = {f"q{i}": float(v) for i, v in enumerate(rng.random(500))}
    ab, ba = paired_test(a, b), paired_test(b, a)
    assert ab["p_value"] > 0.05
    assert ab["p_value"] == ba["p_value"]
    assert ab["mean_diff"] == pytest.approx(-ba["mean_diff"])
    assert ab["ci95"][0] < ab["mean_diff"] < ab["ci95"][1]


def test_paired_uses_common_queries_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    a = {f"q{i}": float(v) for i, v in enumerate(rng.random(120))}
    b = {f"q{i}": float(v) + 0.02 for i, v in enumerate(rng.random(100))}
    b["only_b"] = 5.0
    first = paired_test(a, b, seed=7)
    assert first["n_queries"] == 100
    assert first == paired_test(dict(reversed(list(a.items()))), b, seed=7)
    assert first["ci95"] != paired_test(a, b, seed=8)["ci95"]


def test_paired_needs_common_queries() -> None:
    with pytest.raises(ValueError, match="at least one query"):
        paired_test({"a": 1.0}, {"b": 1.0})

