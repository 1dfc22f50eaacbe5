"""``sparsefit evaluate``: load, split, evaluate BM25 and the models on the held-out queries, save it all."""

from __future__ import annotations

from pathlib import Path

from sparsefit.config import Settings, save_settings
from sparsefit.devices import resolve_device
from sparsefit.evaluation.evaluate import evaluate
from sparsefit.evaluation.report import Report
from sparsefit.files import make_folder, write_json
from sparsefit.pipeline.inputs import Inputs, describe_inputs, index_location, load_inputs
from sparsefit.run import RunFolder, new_run_folder


def run_evaluation(
    catalog_path: str | Path, judgments_path: str | Path, settings: Settings, *, show_progress: bool = True,
    retrieval: str = "sparse",
) -> tuple[Report, Path, Inputs]:
    """Load, split, evaluate BM25 and ``settings.models`` on the held-out queries (``retrieval``: also Qdrant's
    BM25, or that and each model's hybrid; see :func:`~sparsefit.evaluation.evaluate.evaluate`), save everything."""
    device = resolve_device(settings.device)  # before any work: a missing GPU is a one-line error
    folder = make_folder(Path(settings.output) if settings.output else new_run_folder("evaluate"))
    run = RunFolder(folder)
    save_settings(settings, run.config)
    inputs = load_inputs(catalog_path, judgments_path, settings, folder)
    models = list(settings.models)
    if settings.model_type == "minicoil":  # trained on the catalog's texts alone (no judgments), then evaluated too
        models.append(str(_train_minicoil(inputs, settings, folder, device)))
    report = evaluate(
        inputs.catalog, inputs.judgments, inputs.split,
        models=models, bm25=settings.bm25,
        location=index_location(settings, folder / "indexes"), device=device, retrieve_k=settings.retrieve_k, batch_size=settings.batch_size,
        max_seq_length=settings.max_seq_length, architecture=settings.architecture, show_progress=show_progress,
        retrieval=retrieval, fusion=settings.fusion, validation_queries=settings.validation_queries, seed=settings.seed + 7,
        dense=settings.dense,
    )
    report.save(folder)
    write_json(run.inputs, describe_inputs(inputs))
    return report, folder, inputs


def _train_minicoil(inputs: Inputs, settings: Settings, folder: Path, device: str) -> Path:
    """``evaluate --model-type minicoil``: a miniCOIL trained on the catalog (reused when it is already there)."""
    from sparsefit.minicoil import is_minicoil, train_minicoil

    target = folder / "minicoil"
    if not is_minicoil(target):
        train_minicoil(inputs.catalog.texts, encoder=settings.minicoil_encoder, sentence_model=settings.minicoil_sentence_model,
                       min_contexts=settings.minicoil_min_contexts, max_contexts=settings.minicoil_max_contexts,
                       seed=settings.seed, cache_dir=folder / "cache", device=device).save(target)
    return target
