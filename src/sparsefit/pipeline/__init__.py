"""The order of the stages: (generate queries) → load → split → baselines → rounds of (mine → train → index → evaluate) → export.

This package is the only place that knows that order; each stage lives in its own module:
``inputs`` (load, split, generated queries), ``evaluate`` (``sparsefit evaluate``), ``trainer``
(the rounds), ``domains`` (one model on several catalogs), ``resume`` (``--resume`` and ``finetune``), ``card`` (the model card).

Example:
    >>> from sparsefit.config import load_settings
    >>> report, folder = run_evaluation("examples/catalog.csv", "examples/judged_queries.csv",
    ...                                 load_settings(output="runs/demo"))   # doctest: +SKIP
"""

from __future__ import annotations

from sparsefit.pipeline.card import model_card
from sparsefit.pipeline.evaluate import run_evaluation
from sparsefit.pipeline.inputs import (
    Inputs,
    catalog_options,
    describe_inputs,
    exports_average,
    generate_training_queries,
    index_location,
    judgments_options,
    llm_cache_dir,
    load_inputs,
    two_stage_of,
)
from sparsefit.pipeline.records import DamagedCheckpoint, LiveTraining
from sparsefit.pipeline.resume import finetune, resume_trainer, trainer_class
from sparsefit.pipeline.domains import MultiDomainTrainer, finetune_domains, is_multi_domain, resume_multi_domain
from sparsefit.pipeline.trainer import Trainer, default_positive_gains

__all__ = [
    "DamagedCheckpoint", "Inputs", "LiveTraining", "MultiDomainTrainer", "Trainer", "is_multi_domain", "resume_multi_domain", "catalog_options", "default_positive_gains",
    "describe_inputs", "exports_average", "finetune", "finetune_domains", "generate_training_queries", "judgments_options",
    "index_location", "llm_cache_dir", "load_inputs", "model_card", "resume_trainer", "run_evaluation", "trainer_class", "two_stage_of",
]
