"""Confidence: features, the calibration error, and a fit that recovers a known relation."""

from __future__ import annotations

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


def test_expected_calibration_error():
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9] * 10), np.array([0] * 10)) == pytest.approx(0.9)
    assert expected_calibration_error(np.array([0.15, 0.85]), np.array([0, 1])) == pytest.approx(0.15)


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
    assert expected_calibration_error(p, y2) < 0.03
    assert np.abs(p - truth).mean() < 0.05
    # It saves and loads.
    model.save(tmp_path)
    again = ConfidenceModel.load(tmp_path)
    np.testing.assert_allclose(again.predict(x2), p)
    assert again.for_hits([9.0, 5.0, 1.0]) == pytest.approx(list(p[:0]) + list(again.predict(hit_features(np.array([9.0, 5.0, 1.0])))))


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
    assert 0 <= model.report["ece_in_sample"] < 1
