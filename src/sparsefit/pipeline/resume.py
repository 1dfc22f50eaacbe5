"""Resuming a run and the one-call API: ``resume_trainer`` (the settings a run was started with, no
others) and ``finetune``."""

from __future__ import annotations

from pathlib import Path

from sparsefit.config import Settings
from sparsefit.errors import SparsefitError
from sparsefit.pipeline.trainer import Trainer
from sparsefit.run import RunFolder


def resume_trainer(folder: str | Path, *, show_progress: bool = True, device: str | None = None) -> Trainer:
    """A Trainer for an existing run folder, with the settings and input files it was started with.

    ``device`` may differ from the run's (a run started on a GPU can finish on the CPU): it changes where
    the work runs, not what it computes."""
    from sparsefit.config import load_settings

    folder = Path(folder)
    run = RunFolder(folder)
    from sparsefit.pipeline.domains import is_multi_domain

    if folder.parent.name == "domains" and is_multi_domain(folder.parent.parent):
        raise SparsefitError("this is one domain of a multi-domain run: its rounds are the run's", file=folder,
                             hint=f"resume the whole run: sparsefit train --resume {folder.parent.parent}")
    if not run.sources.is_file() or not run.config.is_file():
        raise SparsefitError("not a sparsefit training run (no run.json/config.yaml)", file=folder,
                             hint="pass the folder that `sparsefit train` printed")
    paths = run.read_sources()
    settings = load_settings(run.config, output=folder)
    refuse_changed_settings(settings, run.config)
    if device is not None:
        settings = settings.model_copy(update={"device": device})
    return trainer_class(settings)(paths["catalog"], paths["judgments"], settings, resume=True, show_progress=show_progress)


def trainer_class(settings: Settings) -> type[Trainer]:
    """The trainer of the settings' model type: SPLADE rounds, or miniCOIL's per-word layers."""
    if settings.model_type == "minicoil":
        from sparsefit.pipeline.minicoil_run import MiniCoilTrainer

        return MiniCoilTrainer
    return Trainer


# Settings a resumed run may take from the environment: how it runs, not what it computes.
RUNTIME_SETTINGS = frozenset({"threads", "output", "host", "port", "token", "workspace", "allow_roots", "max_upload_mb",
                              "max_jobs", "qdrant_api_key", "llm_api_key", "device"})


def refuse_changed_settings(settings: Settings, saved_file: Path) -> None:
    """A resumed run keeps the settings it was started with: a ``SPARSEFIT_*`` variable that would change
    one (the environment outranks the saved file) is refused by name instead of silently applied."""
    from sparsefit.config import read_config_file

    saved = read_config_file(saved_file)
    now = settings.public_dict()
    changed = sorted(key for key, value in saved.items()
                     if key in now and key not in RUNTIME_SETTINGS and now[key] != value)
    if changed:
        raise SparsefitError(
            "--resume continues a run with the settings it was started with; the environment would change "
            + ", ".join(f"{key} (SPARSEFIT_{key.upper()})" for key in changed),
            file=saved_file, hint="unset those variables, or start a new run with --output")


def finetune(
    catalog: str | Path, judgments: str | Path | None = None, settings: Settings | None = None, *, resume: bool = False,
    show_progress: bool = True, **overrides,
) -> Path:
    """Fine-tune on ``catalog`` with ``judgments`` (or generated queries); returns the run folder (model in ``<run>/model``).

    Example:
        >>> run = finetune("examples/catalog.csv", "examples/judged_queries.csv", rounds=2)   # doctest: +SKIP
    """
    from sparsefit.config import load_settings

    settings = settings or load_settings(**overrides)
    trainer = trainer_class(settings)(catalog, judgments, settings, resume=resume, show_progress=show_progress)
    trainer.fit()
    trainer.export()
    return trainer.folder
