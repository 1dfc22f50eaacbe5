"""Confidence per hit: a calibrated probability that the hit is relevant.

A logistic model over four features of a hit in its ranked list: the score, the gap to the next
hit, the score relative to the top hit, and log(1 + rank). It is fitted on the run's held-out
judged queries (never on training queries). A hit counts as relevant when it is judged relevant;
an unjudged hit counts as not relevant (as in the evaluation), so the confidence is a lower bound
where judgments are sparse. The calibration error is measured by two-fold cross-fitting over
queries: the model fitted on one half is scored on the other half, and the reverse.

Example:
    >>> import numpy as np
    >>> features = hit_features(np.array([9.0, 7.5, 7.0]))
    >>> features.shape
    (3, 4)
    >>> round(expected_calibration_error(np.array([0.8, 0.2]), np.array([1, 0])), 2)
    0.2
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsefit.errors import SparsefitError

FEATURES = ("score", "gap_to_next", "score_vs_top", "log_rank")
FILE = "confidence.json"


def hit_features(scores: np.ndarray, next_score: float | None = None) -> np.ndarray:
    """Feature rows for a ranked list of scores (best first); ``next_score`` follows the last one."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return np.zeros((0, len(FEATURES)))
    following = np.append(scores[1:], scores[-1] if next_score is None else next_score)
    top = scores[0] if scores[0] > 0 else 1.0
    rank = np.arange(1, len(scores) + 1)
    return np.column_stack([scores, scores - following, scores / top, np.log1p(rank)])


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |mean predicted − observed rate| over equal-width probability bins."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if p.size == 0:
        return 0.0
    which = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.sum() / p.size * abs(p[mask].mean() - y[mask].mean())
    return float(error)


@dataclass
class ConfidenceModel:
    """Standardised features → logistic regression → probability of relevance."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    report: dict[str, Any]

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - np.array(self.mean)) / np.array(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.array(self.coef) + self.intercept)))

    def for_hits(self, scores: list[float], next_score: float | None = None) -> list[float]:
        """Probabilities for a ranked list of hit scores."""
        if not scores:
            return []
        return [float(p) for p in self.predict(hit_features(np.array(scores), next_score))]

    def save(self, folder: Path) -> Path:
        from sparsefit.files import write_json

        write_json(folder / FILE, asdict(self))
        return folder / FILE

    @classmethod
    def load(cls, folder: Path) -> ConfidenceModel | None:
        file = folder / FILE
        if not file.is_file():
            return None
        try:
            return cls(**json.loads(file.read_text()))
        except (ValueError, TypeError) as exc:
            raise SparsefitError(f"the confidence model is damaged ({exc})", file=file,
                                 hint="delete it; it is fitted again when the service starts") from None


def fit(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> ConfidenceModel:
    """Fit on all rows; report the calibration error of two-fold cross-fitting over ``groups`` (queries)."""
    from sklearn.linear_model import LogisticRegression

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    if len(set(labels.tolist())) < 2:
        raise SparsefitError("cannot fit confidence: the held-out hits are all relevant or all not relevant",
                             hint="evaluate on more judged queries")

    def train(x: np.ndarray, y: np.ndarray) -> ConfidenceModel:
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        if len(set(y.tolist())) < 2:  # a fold with one class: its constant rate (clipped away from 0 and 1)
            rate = min(max(float(y.mean()), 1e-3), 1 - 1e-3)
            return ConfidenceModel(mean.tolist(), scale.tolist(), [0.0] * x.shape[1], float(np.log(rate / (1 - rate))), {})
        model = LogisticRegression(C=1.0, max_iter=1000).fit((x - mean) / scale, y)
        return ConfidenceModel(mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0]), {})

    half = np.array([int(hashlib.sha256(str(g).encode()).hexdigest(), 16) % 2 for g in groups])
    final = train(features, labels)
    in_sample = final.predict(features)
    final.report = {
        "features": list(FEATURES),
        "hits": int(len(labels)), "queries": int(len(set(groups.tolist()))), "relevant_rate": round(float(labels.mean()), 4),
        "ece_cross_fitted": None, "ece_in_sample": round(expected_calibration_error(in_sample, labels), 4),
        "brier_cross_fitted": None, "reliability": [], "unjudged_hits_count_as": "not relevant",
    }
    if len(set(half.tolist())) < 2:  # every query fell in one fold: nothing to measure on unseen queries
        final.report["cross_fitting"] = "not measured: the held-out queries all fell into one fold"
        return final
    predicted = np.zeros(len(labels))
    for fold in (0, 1):
        fitted = train(features[half != fold], labels[half != fold])
        predicted[half == fold] = fitted.predict(features[half == fold])
    final.report.update({
        "ece_cross_fitted": round(expected_calibration_error(predicted, labels), 4),
        "brier_cross_fitted": round(float(np.mean((predicted - labels) ** 2)), 4),
        "reliability": _reliability(predicted, labels),
    })
    return final


def fit_on_held_out(encoder, index, test, folder: Path, *, depth: int = 10, encode_lock=None, index_lock=None) -> ConfidenceModel:
    """Fit on the top ``depth`` hits of every held-out query ``test`` (Judgments) as ``index`` serves them
    (unfiltered, exact or two-stage as the index searches), save it in ``folder`` and return it.

    ``train`` calls it when it exports, ``serve`` when a run has no ``confidence.json`` yet; the locks
    are the service's (one forward pass, one index call at a time)."""
    from contextlib import nullcontext

    keys = test.keys()
    relevant: dict[str, set[str]] = {}
    for key, pid, is_rel in zip(test.query_keys, test.product_ids, test.relevant().tolist()):
        if is_rel:
            relevant.setdefault(key, set()).add(pid)
    with encode_lock or nullcontext():
        vectors = encoder.encode_queries([test.query_text(k) for k in keys])
    with index_lock or nullcontext():
        hits = index.search_batch(vectors, limit=depth + 1)
    rows, labels, groups = [], [], []
    for key, found in zip(keys, hits):
        if not found:
            continue
        feats = hit_features(np.array([h.score for h in found]))[:depth]
        rows.append(feats)
        labels += [int(h.product_id in relevant.get(key, ())) for h in found[:depth]]
        groups += [key] * len(feats)
    if not rows:
        raise SparsefitError("cannot fit confidence: no held-out query found any product", hint="evaluate on more judged queries")
    model = fit(np.vstack(rows), np.array(labels), np.array(groups))
    model.save(folder)
    return model


def _reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    which = np.minimum((p * bins).astype(int), bins - 1)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "hits": int((which == b).sum()),
             "mean_confidence": round(float(p[which == b].mean()), 4), "relevant_rate": round(float(y[which == b].mean()), 4)}
            for b in range(bins) if (which == b).any()]
