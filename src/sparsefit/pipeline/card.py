"""The run's model card (README.md): what was trained on what, and the held-out table per round."""

from __future__ import annotations

from sparsefit.config import Settings
from sparsefit.evaluation.report import Report
from sparsefit.pipeline.inputs import Inputs, exports_average


def model_card(report: Report, settings: Settings, timings: dict[str, float], inputs: Inputs,
               notes: list[str] | None = None) -> str:
    """The run's README.md: what was trained on what, the held-out table per round (with the paired test against
    the base model + BM25 hybrid when there is one) and ``notes`` (how hybrid and feedback were fitted)."""
    base_ndcg = report.baseline.mean["ndcg@10"]
    lines = [
        f"# sparsefit model: {settings.base_model} fine-tuned on {inputs.catalog.source.name}",
        "",
        f"- Base model: `{settings.base_model}` ({settings.architecture}); {settings.rounds} rounds "
        f"(round 0 in-batch negatives, later rounds {settings.negatives} mined negative(s) per row, strategy "
        f"{settings.mining_strategy}); exported: "
        + ("the weight average of every round's model." if exports_average(settings) else "the last round's model."),
        f"- Catalog: {len(inputs.catalog):,} products; judgments: {len(inputs.judgments):,} of "
        f"{len(inputs.judgments.keys()):,} queries ({inputs.judgments.scheme.describe()}).",
        f"- Held out: {len(inputs.split.test):,} queries (seed {inputs.split.seed}); no test query was trained on.",
        "- Load it with `SparseEncoder(\"model\")` (sentence-transformers) or `sparsefit.load_encoder(\"model\")`.",
        "",
        "| system | nDCG@10 | MRR@10 | R@10 | R@100 | P@10 | nDCG@10 vs BM25 | p vs BM25 | p vs hybrid (base) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    versus_bm25 = report.comparisons()
    reference = report.reference
    versus_hybrid = report.comparisons(against=reference) if reference is not None else {}
    for s in report.systems:
        m = s.mean
        ratio = m["ndcg@10"] / base_ndcg if base_ndcg else float("nan")
        p_bm25 = f"{versus_bm25[s.name]['p_value']:.3g}" if s.name in versus_bm25 else ""
        p_hybrid = f"{versus_hybrid[s.name]['p_value']:.3g}" if s.name in versus_hybrid else ""
        lines.append(f"| {s.name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@10']:.4f} | "
                     f"{m['recall@100']:.4f} | {m['p@10']:.4f} | {ratio:.3f}× | {p_bm25} | {p_hybrid} |")
    lines += [""] + [f"{note}\n" for note in notes or ()]
    lines += ["Wall time per stage (seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), ""]
    return "\n".join(lines)
