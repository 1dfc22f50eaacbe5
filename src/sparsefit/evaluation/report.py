"""The evaluation report: a rich table, a summary JSON, per-query results, paired significance tests.

Example:
    >>> report = evaluate(catalog, judgments, split)   # doctest: +SKIP
    >>> report.save(Path("runs/demo")); report.mean("bm25")["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from sparsefit.evaluation.metrics import METRICS, mean_metrics, paired_test, per_query_metrics
from sparsefit.files import write_atomic, write_json

_HEADERS = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "R@10", "recall@100": "R@100", "p@10": "P@10"}
RUN_DEPTH_SAVED = 100  # ranked results kept per query and system in runs.jsonl


@dataclass
class SystemResult:
    """One retrieval system's results on the test queries."""

    name: str
    kind: str  # "bm25" | "encoder" | "hybrid"
    per_query: dict[str, dict[str, float]]
    mean: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    run: dict[str, list[tuple[str, float]]] = field(default_factory=dict)


@dataclass
class Report:
    """Every system on the same queries; the first system is the baseline for the paired tests, and the first
    hybrid system (the base model fused with BM25), when there is one, the reference for a second test."""

    systems: list[SystemResult]
    queries: dict[str, str]  # query key -> query text
    catalog_size: int
    scheme: str
    relevant_threshold: float

    @property
    def baseline(self) -> SystemResult:
        return self.systems[0]

    def system(self, name: str) -> SystemResult:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(f"no system named {name!r}; have {[s.name for s in self.systems]}")

    def mean(self, name: str) -> dict[str, float]:
        return self.system(name).mean

    @property
    def reference(self) -> SystemResult | None:
        """The first hybrid system (the untuned model fused with BM25): does tuning beat what hybrid gives for free?"""
        return next((s for s in self.systems if s.kind == "hybrid"), None)

    def comparisons(self, metric: str = "ndcg@10", against: SystemResult | None = None) -> dict[str, dict]:
        """Paired randomization test of each other system against ``against`` (default: the baseline) on ``metric``."""
        against = against or self.baseline
        base = {q: m[metric] for q, m in against.per_query.items()}
        results = {}
        for system in self.systems:
            if system is not against:
                other = {q: m[metric] for q, m in system.per_query.items()}
                results[system.name] = paired_test(other, base)
        return results

    # -- output ----------------------------------------------------------------------------
    def table(self, title: str | None = None) -> Table:
        """A rich table: one row per system, the metrics, the ratio and p-value against the baseline."""
        table = Table(title=title or f"Held-out evaluation: {len(self.queries):,} test queries, {self.catalog_size:,} products")
        table.add_column("system", style="bold")
        for metric in METRICS:
            table.add_column(_HEADERS.get(metric, metric), justify="right")
        table.add_column(f"nDCG@10 vs {self.baseline.name}", justify="right")
        table.add_column("p (paired)", justify="right")
        reference = self.reference
        if reference is not None:
            table.add_column(f"p vs {reference.name.split(',')[0]}", justify="right")
        table.add_column("seconds", justify="right")
        comparisons = self.comparisons()
        versus = self.comparisons(against=reference) if reference is not None else {}
        base_ndcg = self.baseline.mean["ndcg@10"]
        for system in self.systems:
            row = [system.name] + [f"{system.mean[m]:.4f}" for m in METRICS]
            if system is self.baseline:
                row += ["1.000×", ""]
            else:
                ratio = system.mean["ndcg@10"] / base_ndcg if base_ndcg else float("nan")
                row += [f"{ratio:.3f}×", f"{comparisons[system.name]['p_value']:.3g}"]
            if reference is not None:
                row.append(f"{versus[system.name]['p_value']:.3g}" if system is not reference else "")
            row.append(f"{sum(system.seconds.values()):.1f}")
            table.add_row(*row)
        return table

    def summary(self) -> dict:
        """The summary JSON: means, ratios, tests and timings per system."""
        comparisons = self.comparisons()
        reference = self.reference
        versus = self.comparisons(against=reference) if reference is not None else {}
        base_ndcg = self.baseline.mean["ndcg@10"]
        return {
            "test_queries": len(self.queries),
            "catalog_size": self.catalog_size,
            "label_scheme": self.scheme,
            "relevant_threshold": self.relevant_threshold,
            "baseline": self.baseline.name,
            "reference": reference.name if reference is not None else None,
            "systems": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "metrics": s.mean,
                    "ndcg@10_vs_baseline": (s.mean["ndcg@10"] / base_ndcg) if base_ndcg else None,
                    "paired_test_vs_baseline": comparisons.get(s.name),
                    "paired_test_vs_reference": versus.get(s.name),
                    "seconds": s.seconds,
                }
                for s in self.systems
            ],
        }

    def save(self, folder: Path) -> None:
        """Write report.json (summary), per_query.csv and runs.jsonl (top results) into ``folder``."""
        folder = Path(folder)
        write_json(folder / "report.json", self.summary())
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["query", "system", *METRICS])
        for system in self.systems:
            for key, metrics in system.per_query.items():
                writer.writerow([self.queries[key], system.name, *(f"{metrics[m]:.6f}" for m in METRICS)])
        write_atomic(folder / "per_query.csv", buffer.getvalue())
        lines = []
        for system in self.systems:
            for key, ranked in system.run.items():
                top = [[doc, round(score, 6)] for doc, score in ranked[:RUN_DEPTH_SAVED]]
                lines.append(json.dumps({"system": system.name, "query_key": key, "query": self.queries[key], "results": top}))
        write_atomic(folder / "runs.jsonl", "\n".join(lines) + "\n")


def score_run(name: str, kind: str, test, run: dict, seconds: dict[str, float]) -> SystemResult:
    """A system's ranked results on the queries of ``test`` (Judgments), scored per query."""
    per_query = per_query_metrics(test.qrels(), run, relevant_threshold=test.scheme.relevant_threshold)
    return SystemResult(name=name, kind=kind, per_query=per_query, mean=mean_metrics(per_query), seconds=seconds, run=run)
