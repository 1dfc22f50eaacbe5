"""Confidence: features, the calibration error, and a fit that recovers a known relation.

Expected values come from hand arithmetic or from the small reference implementations below (a loop over
equal-width bins, scikit-learn's logistic regression called directly), never from the module under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparsefit.errors import SparsefitError
from sparsefit.evaluation.confidence import ConfidenceModel, expected_calibration_error, fit, hit_features


def test_hit_features():
    f = hit_features(np.array([10.0, 8.0, 7.5]), next_score=7.0)
    np.testing.assert_allclose(f[:, 0], [10, 8, 7.5])
    np.testing.assert_allclose(f[:, 1], [2.0, 0.5, 0.5])
    np.testing.assert_allclose(f[:, 2], [1.0, 0.8, 0.75])
    np.testing.assert_allclose(f[:, 3], np.log1p([1, 2, 3]))
    assert hit_features(np.array([])).shape == (0, 4)


def reference_ece(probabilities, labels, bins: int = 10) -> float:
    """The expected calibration error written out plainly: bins [0, 0.1), [0.1, 0.2), …, [0.9, 1.0]; for each
    non-empty bin its share of the hits times |mean probability − rate of relevant hits|, summed."""
    pairs = list(zip(map(float, probabilities), map(float, labels)))
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [(p, y) for p, y in pairs if low <= p < high or (b == bins - 1 and p == high)]
        if members:
            mean_p = sum(p for p, _ in members) / len(members)
            rate = sum(y for _, y in members) / len(members)
            total += len(members) / len(pairs) * abs(mean_p - rate)
    return total


def test_expected_calibration_error():
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([0] * 10)) == pytest.approx(0.9)
    assert expected_calibration_error(np.array([0.15, 0.85]), np.array([0, 1])) == pytest.approx(0.15)
    # Two hits in bin 0.1–0.2 (mean 0.15, rate 1/2) and two in 0.9–1.0, 1.0 included (mean 0.975, rate 1):
    # 2/4 · 0.35 + 2/4 · 0.025 = 0.1875.
    assert expected_calibration_error(np.array([0.12, 0.18, 0.95, 1.0]), np.array([0, 1, 1, 1])) == pytest.approx(0.1875)
    assert expected_calibration_error(np.array([]), np.array([])) == 0.0


def test_expected_calibration_error_equals_the_plain_reference_on_random_lists():
    rng = np.random.default_rng(11)
    for size in (1, 7, 100, 2000):
        p, y = rng.random(size), rng.integers(0, 2, size)
        assert expected_calibration_error(p, y) == pytest.approx(reference_ece(p, y), abs=1e-12)


def _synthetic(queries: int, seed: int):
    """Ranked hits whose true relevance probability is a logistic function of score and rank."""
    rng = np.random.default_rng(seed)
    rows, labels, groups, truth = [], [], [], []
    for q in range(queries):
        scores = np.sort(rng.gamma(4.0, 2.0, size=11))[::-1]
        f = hit_features(scores)[:10]
        p = 1 / (1 + np.exp(-(0.6 * f[:, 0] - 1.2 * f[:, 3] - 2.5)))
        rows.append(f)
        truth.append(p)
        labels += (rng.random(10) < p).astype(int).tolist()
        groups += [f"q{q}"] * 10
    return np.vstack(rows), np.array(labels), np.array(groups), np.concatenate(truth)


def test_fit_is_calibrated_on_queries_it_was_not_fitted_on(tmp_path):
    x, y, g, _ = _synthetic(600, seed=1)
    model = fit(x, y, g)
    assert model.report["ece_cross_fitted"] < 0.03
    assert model.report["queries"] == 600 and model.report["hits"] == 6000
    # On fresh queries from the same process it stays calibrated, and far better than the raw rate.
    x2, y2, _, truth = _synthetic(600, seed=2)
    p = model.predict(x2)
    assert reference_ece(p, y2) < 0.03
    assert np.abs(p - truth).mean() < 0.05
    # It saves and loads.
    model.save(tmp_path)
    again = ConfidenceModel.load(tmp_path)
    np.testing.assert_allclose(again.predict(x2), p)


def test_for_hits_is_the_logistic_of_the_standardised_features_by_hand():
    model = ConfidenceModel(mean=[1.0, 2.0, 0.5, 0.0], scale=[2.0, 1.0, 1.0, 1.0], coef=[1.0, -0.5, 2.0, 0.0],
                            intercept=-1.0, report={})
    # Scores 9, 5, 1: gaps to the next 4, 4, 0 (the last has no next); score / top 1, 5/9, 1/9.
    # z = (9-1)/2·1 + (4-2)·(-0.5) + (1-0.5)·2 - 1 = 3;  (5-1)/2 - 1 + (5/9-0.5)·2 - 1 = 1/9;  0 + 1 + (1/9-0.5)·2 - 1 = -7/9
    expected = [1 / (1 + math.exp(-z)) for z in (3.0, 1 / 9, -7 / 9)]
    assert model.for_hits([9.0, 5.0, 1.0]) == pytest.approx(expected, abs=1e-12)
    # Given the score that follows the last hit (0.5), its gap is 0.5, not 0: the gap term is 0.75, not 1, so z = -7/9 - 0.25
    assert model.for_hits([9.0, 5.0, 1.0], next_score=0.5)[2] == pytest.approx(1 / (1 + math.exp(7 / 9 + 0.25)), abs=1e-12)
    assert model.for_hits([]) == []


def test_fit_needs_both_classes():
    x, _, g, _ = _synthetic(10, seed=3)
    with pytest.raises(SparsefitError, match="all relevant or all not relevant"):
        fit(x, np.zeros(len(x), dtype=int), g)


def test_a_damaged_confidence_file_is_a_clear_error(tmp_path):
    (tmp_path / "confidence.json").write_text("{broken")
    with pytest.raises(SparsefitError, match="delete it"):
        ConfidenceModel.load(tmp_path)


def test_queries_that_all_fall_in_one_fold_give_no_cross_fitted_error_rather_than_a_wrong_one():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 4))
    labels = np.array([0, 1] * 20)
    model = fit(features, labels, np.array(["the same query"] * 40))  # one group: one fold is empty
    assert model.report["ece_cross_fitted"] is None and model.report["brier_cross_fitted"] is None
    assert "one fold" in model.report["cross_fitting"]
    # The in-sample error, recomputed: scikit-learn's logistic regression (C=1) on the standardised features,
    # scored by the plain reference ECE (the report rounds to 4 places).
    from sklearn.linear_model import LogisticRegression

    standardised = (features - features.mean(axis=0)) / features.std(axis=0)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(standardised, labels).predict_proba(standardised)[:, 1]
    np.testing.assert_allclose(model.predict(features), reference, atol=1e-6)
    assert model.report["ece_in_sample"] == pytest.approx(reference_ece(reference, labels), abs=1e-4)
    assert model.report["relevant_rate"] == 0.5 and model.report["hits"] == 40 and model.report["queries"] == 1
