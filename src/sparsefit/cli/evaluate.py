"""``sparsefit evaluate``: BM25 and sparse encoders on held-out judged queries over the whole catalog."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.cli.options import (
    DeviceOpt,
    CatalogArg,
    CollectionOpt,
    JudgmentsOpt,
    QdrantOnDiskOpt,
    QdrantReplicasOpt,
    QdrantShardsOpt,
    QdrantWriteConsistencyOpt,
    SearchPostingCapOpt,
    DenseOpt,
    qdrant_options,
    setting_default,
    with_data_options,
)
from sparsefit.cli.printing import print_inputs, print_search_mode
from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


class EvalRetrieval(str, Enum):
    sparse = "sparse"
    bm25 = "bm25"
    hybrid = "hybrid"


@app.command()
@with_data_options
def evaluate(
    catalog: CatalogArg,
    judgments: JudgmentsOpt = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="model to evaluate: alias, folder or hub id (repeatable; default splade-tiny)")] = None,
    no_bm25: Annotated[bool, typer.Option("--no-bm25", help="skip the BM25 baseline")] = False,
    model_type: Annotated[Optional[str], typer.Option(help="minicoil: also train a miniCOIL on the catalog (no judgments used) and evaluate it beside the models")] = None,
    minicoil_min_contexts: Annotated[Optional[int], typer.Option(help=f"miniCOIL: products a word needs for its own layer (default {setting_default('minicoil_min_contexts')})")] = None,
    architecture: Annotated[Optional[str], typer.Option(help="splade or inference-free")] = None,
    test_judgments: Annotated[Optional[Path], typer.Option(help="held-out judgments file instead of a random split")] = None,
    split: Annotated[Optional[Path], typer.Option("--split", help="reuse a saved split.json")] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help=f"share of queries held out (default {setting_default('test_fraction')})")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {setting_default('seed')})")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="output folder (default runs/evaluate-<time>)")] = None,
    qdrant_url: Annotated[Optional[str], typer.Option(help="Qdrant server URL (API key from SPARSEFIT_QDRANT_API_KEY); default: Qdrant Edge in-process")] = None,
    collection: CollectionOpt = None,
    qdrant_shards: QdrantShardsOpt = None,
    qdrant_replicas: QdrantReplicasOpt = None,
    qdrant_write_consistency: QdrantWriteConsistencyOpt = None,
    qdrant_on_disk: QdrantOnDiskOpt = False,
    search_posting_cap: SearchPostingCapOpt = None,
    dense: DenseOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="encoding batch size")] = None,
    device: DeviceOpt = None,
    retrieval: Annotated[EvalRetrieval, typer.Option(help="sparse: the models; bm25: also Qdrant's BM25; hybrid: also each model fused with it in Qdrant, weights fitted on training queries")] = EvalRetrieval.sparse,
    fusion: Annotated[Optional[str], typer.Option(help="hybrid fusion: rrf (weighted, default), dbsf or formula")] = None,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Evaluate BM25 and sparse encoders on held-out judged queries over the whole catalog."""
    from sparsefit.config import load_settings
    from sparsefit.pipeline import run_evaluation

    if judgments is None:
        raise SparsefitError("evaluate needs judged queries", hint="pass --judgments FILE")
    settings = load_settings(
        config,
        models=model, bm25=False if no_bm25 else None, model_type=model_type, minicoil_min_contexts=minicoil_min_contexts, architecture=architecture, test_judgments=test_judgments,
        split_file=split, test_fraction=test_fraction, seed=seed, output=output, qdrant_url=qdrant_url,
        batch_size=batch_size, search_posting_cap=search_posting_cap, dense=dense, device=device, fusion=fusion,
        **qdrant_options(collection, qdrant_shards, qdrant_replicas, qdrant_write_consistency, qdrant_on_disk), **data,
    )
    started = time.perf_counter()
    report, folder, inputs = run_evaluation(catalog, judgments, settings, retrieval=retrieval.value)
    print_inputs(inputs)
    console.print(report.table(), soft_wrap=True)
    print_search_mode(settings)
    console.print(f"Wall time {time.perf_counter() - started:.1f} s. Saved report.json, per_query.csv, runs.jsonl and split.json in {folder}/")
