"""The training run's hybrid and feedback measurements: fitted on the validation queries, scored on the test ones.

A part of the training queries (``validation.json``) is kept out of training; the fusion weights of each
hybrid (the base model's and the exported model's, with BM25 and, with ``--dense``, three ways) and the
relevance-feedback coefficient are chosen on it, and what they give is measured on the held-out queries.
Results: ``fusion.json`` (every candidate's validation score), ``feedback.json`` and the report's hybrid rows.

Example:
    >>> fits = RetrievalFits(RunFolder("runs/x"), settings, validation, test)          # doctest: +SKIP
    >>> fits.hybrids(base_encoder, index, "base", "hybrid (base)")                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from sparsefit.config import Settings
from sparsefit.data import Judgments
from sparsefit.data.split import validation_keys
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.report import SystemResult
from sparsefit.files import read_json, write_json
from sparsefit.index import Fusion, SparseIndex
from sparsefit.models import Encoder
from sparsefit.pipeline.records import read_optional
from sparsefit.run import RunFolder


def validation_part(run: RunFolder, train: Judgments, settings: Settings) -> Judgments | None:
    """The training queries kept out of training to fit on (``validation.json``, reused on resume):
    ``validation_queries`` at most, and at most a tenth of the training queries with a relevant judgment,
    drawn with the run's seed. None when there are none to keep."""
    if run.validation.is_file():
        keys = read_json(run.validation)["queries"]
    else:
        count = min(settings.validation_queries, len(train.keys_with_relevant()) // 10)
        keys = validation_keys(train, count, settings.seed + 7)
        write_json(run.validation, {"queries": keys, "of_training_queries": len(train.keys())})
    return train.subset(set(keys)) if keys else None


class RetrievalFits:
    """Fits on ``validation``, scores on ``test`` (never a test query in a fit: checked here)."""

    def __init__(self, run: RunFolder, settings: Settings, validation: Judgments | None, test: Judgments) -> None:
        if validation is not None and set(validation.keys()) & set(test.keys()):
            raise SparsefitError("a validation query is also a test query", file=run.validation,
                                 hint="delete validation.json and resume the run")
        self.run, self.settings, self.validation, self.test = run, settings, validation, test

    def hybrids(self, encoder: Encoder, index: SparseIndex, role: str, name: str, dense=None) -> list[SystemResult]:
        """``encoder`` fused with Qdrant's BM25 (and, given ``dense``, three ways too) in Qdrant, the weights fitted
        on the validation queries (``fusion.json`` under ``role``), scored on the test queries; [] without
        validation queries."""
        from sparsefit.evaluation.hybrid import evaluate_hybrid, fit_fusion

        if self.validation is None:
            return []
        s, out = self.settings, []
        for leg in [None] + ([dense] if dense is not None else []):
            key, label = (role, name) if leg is None else (f"{role}+dense", name.replace(")", " + dense)"))
            fusion = fit_fusion(encoder, index, self.validation, method=s.fusion, batch_size=s.batch_size, dense=leg)
            write_json(self.run.fusion, {**read_optional(self.run.fusion), key: fusion.to_json()})
            out.append(evaluate_hybrid(encoder, index, self.test, fusion, name=label, retrieve_k=s.retrieve_k,
                                       batch_size=s.batch_size, dense=leg))
        return out

    def feedback(self, encoder: Encoder, index: SparseIndex) -> None:
        """Relevance feedback on ``encoder``: ``c`` fitted on the validation queries, one simulated round on the
        test queries (``feedback.json``)."""
        from sparsefit.evaluation.feedback import fit_feedback, simulate_feedback

        if self.validation is None:
            return
        s = self.settings
        strategy = fit_feedback(encoder, index, self.validation, batch_size=s.batch_size)
        result = simulate_feedback(encoder, index, self.test, strategy, retrieve_k=s.retrieve_k, batch_size=s.batch_size)
        result.pop("per_query")
        write_json(self.run.feedback, {"strategy": strategy.to_json(), "test": result})


def fusion_summary(run: RunFolder) -> str | None:
    """One line on the fitted fusions (``fusion.json``); None when none was fitted."""
    fitted: dict[str, Any] = read_optional(run.fusion)
    if not fitted:
        return None
    parts = [f"{role}: {Fusion.from_json(data).describe()}" for role, data in fitted.items()]
    queries = next(iter(fitted.values())).get("fitted", {}).get("queries")
    return (f"Hybrid = the model's vectors + Qdrant's BM25 in one Qdrant query; fusion fitted on {queries} validation "
            f"queries (kept out of training): {'; '.join(parts)}")


def feedback_summary(run: RunFolder) -> str | None:
    """One line on relevance feedback (``feedback.json``); None when it was not measured."""
    data = read_optional(run.feedback)
    if not data:
        return None
    test, strategy = data["test"], data["strategy"]
    p = (test.get("paired_test") or {}).get("p_value")
    return (f"Relevance feedback, one simulated round (clicks on the judged-relevant products of the first page): "
            f"nDCG@10 of the unseen results {test['ndcg@10']['without']:.4f} → {test['ndcg@10']['with']:.4f} on "
            f"{test['queries']:,} held-out queries (p = {p:.3g}); c = {strategy['c']} fitted on "
            f"{strategy['fitted']['queries']} validation queries")
