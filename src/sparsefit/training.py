"""One round of training with sentence-transformers: SpladeLoss over SparseMultipleNegativesRankingLoss.

In-batch negatives over the whole batch (plus any mined hard negatives in the rows), separate FLOPS
regulariser weights for queries and documents, and a no-duplicates batch sampler so that a query or
product never appears twice in a batch (it would be a false in-batch negative).

Example:
    >>> rows = [{"query": "drill", "positive": "cordless drill 20v"},
    ...         {"query": "hose", "positive": "garden hose 50 ft"}]
    >>> stats = train_round(encoder, rows, TrainingOptions(batch_size=2), Path("out"))   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from transformers import PrinterCallback, TrainerCallback

from sparsefit.devices import Precision, is_cuda
from sparsefit.domain_batches import DomainMix
from sparsefit.distributed import timeout_seconds, world_size
from sparsefit.errors import SparsefitError
from sparsefit.interrupt import check as check_interrupt
from sparsefit.models import Encoder
from sparsefit.models.fast_training import FastPreprocess, FastTraining
from sparsefit.progress import quiet_libraries


@dataclass
class TrainingOptions:
    """The knobs of one round (filled from :class:`sparsefit.config.Settings`)."""

    batch_size: int = 64
    learning_rate: float = 2e-4
    static_learning_rate: float = 1e-3  # inference-free SPLADE: the static query weights
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    query_regularizer_weight: float = 5e-5
    document_regularizer_weight: float = 3e-5
    max_seq_length: int = 64
    precision: Precision = "float32"  # bfloat16/float16: autocast, the weights stay float32 (float16: loss scaler)
    seed: int = 13
    device: str = "cpu"  # a resolved torch device (see sparsefit.devices.resolve_device)
    fast_path: bool = True  # the CPU training kernels; False: sentence-transformers' own forward pass (the reference)


@dataclass
class RoundStats:
    """What a round of training did, saved as rounds/<n>/training.json."""

    rows: int
    negatives_per_row: int
    steps: int
    seconds: float
    precision: Precision  # the arithmetic used (``auto`` already resolved)
    losses: list[dict] = field(default_factory=list)  # {"step", "loss", "learning_rate"}
    device: str = "cpu"
    path: Literal["fast", "sentence-transformers"] = "fast"  # the forward pass used
    processes: int = 1  # data-parallel processes (torchrun); ``rows``/``steps`` are the global figures


def train_round(
    encoder: Encoder,
    rows: Sequence[dict[str, str]],
    options: TrainingOptions,
    workdir: Path,
    *,
    on_step: Callable[[int, int, float | None], None] | None = None,
    mix: DomainMix | None = None,
) -> RoundStats:
    """Train ``encoder`` in place on ``rows`` ({"query", "positive", "negative_1", ...}); returns stats.

    ``on_step(step, total_steps, loss)`` is called after every optimiser step (for progress bars).
    The fast CPU kernels are used on the CPU only (the tests prove them equal to sentence-transformers' own
    path there); other devices train through sentence-transformers. Under ``torchrun`` every process
    trains on its share of each batch and the in-batch negatives are gathered across processes, so the
    global batch is the negative pool, as in one process.

    ``mix``: the rows are several domains' rows, one after the other; every batch then comes from one
    domain, chosen by the mix's probabilities (see :mod:`sparsefit.domain_batches`).
    """
    import time

    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sparse_encoder import SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

    columns = _columns(rows)
    processes = world_size()
    fast = options.fast_path and options.device == "cpu"
    if len(rows) < 2:
        raise SparsefitError("training needs at least 2 (query, positive) rows", hint="add judged queries or lower the positive threshold")
    batch_size = min(options.batch_size, len(rows))
    if batch_size % processes:
        raise SparsefitError(f"the training batch of {batch_size} rows does not split evenly over {processes} processes",
                             hint=f"pass --train-batch-size a multiple of {processes} (it is the global batch, over all processes)")
    if mix is not None and processes > 1:
        raise SparsefitError("multi-domain training runs in one process (its batch sampler is not distributed yet)",
                             hint="run `sparsefit train --domains` without torchrun")
    batch_size //= processes  # per process: the global batch stays the recipe's, and the negative pool with it
    dataset = Dataset.from_dict({c: [row[c] for row in rows] for c in columns})
    model = encoder.model
    inference_free = encoder.architecture == "inference-free"
    _set_max_length(model, options.max_seq_length)
    loss = SpladeLoss(
        model,
        loss=SparseMultipleNegativesRankingLoss(model, gather_across_devices=processes > 1),
        document_regularizer_weight=options.document_regularizer_weight,
        query_regularizer_weight=None if inference_free else options.query_regularizer_weight,
        use_document_regularizer_only=inference_free,  # static query weights need no FLOPS term
    )
    extra = {}
    if inference_free:
        extra["router_mapping"] = {c: ("query" if c == "query" else "document") for c in columns}
        extra["learning_rate_mapping"] = {r"sub_modules\.query\.": options.static_learning_rate}  # the static query route
    args = SparseEncoderTrainingArguments(
        output_dir=str(workdir),
        num_train_epochs=options.epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_ratio,  # a float below 1 is a ratio in transformers v5
        batch_sampler=BatchSamplers.NO_DUPLICATES if mix is None else mix.sampler(),
        seed=options.seed,
        data_seed=options.seed,
        save_strategy="no",
        logging_steps=max(1, min(10, steps_for(len(rows), batch_size * processes, options.epochs) // 10)),  # a loss curve for short runs too
        report_to="none",
        use_cpu=options.device == "cpu",
        bf16=options.precision == "bfloat16",
        fp16=options.precision == "float16",
        ddp_backend=("nccl" if is_cuda(options.device) else "gloo") if processes > 1 else None,
        ddp_timeout=int(timeout_seconds()),
        dataloader_num_workers=0,
        disable_tqdm=True,
        **extra,
    )
    if is_cuda(options.device) and processes == 1:
        _ = args.device  # let transformers pick its device first, then keep to that one GPU (no DataParallel)
        args._n_gpu = 1
    recorder = _Recorder(on_step)
    if not model.model_card_data.widget:  # else the card computes examples behind a stray tqdm bar
        model.model_card_data.widget = [{"text": row["query"]} for row in rows[:3]]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with quiet_libraries():
        trainer = SparseEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[recorder])
        trainer.remove_callback(PrinterCallback)  # we report progress and losses ourselves
        if fast:
            trainer.data_collator.preprocess_fn = FastPreprocess(model, trainer.data_collator.preprocess_fn)
        started = time.perf_counter()
        with FastTraining(model) if fast else contextlib.nullcontext():
            trainer.train()
    model.eval()
    return RoundStats(
        rows=len(rows),
        negatives_per_row=len(columns) - 2,
        steps=int(trainer.state.global_step),
        seconds=time.perf_counter() - started,
        precision=options.precision,
        losses=recorder.losses,
        device=options.device,
        path="fast" if fast else "sentence-transformers",
        processes=processes,
    )


def _columns(rows: Sequence[dict[str, str]]) -> list[str]:
    if not rows:
        raise SparsefitError("no training rows: no train query has a positive product", hint="check the judgments and --positive-min-gain")
    columns = list(rows[0])
    if columns[:2] != ["query", "positive"]:
        raise ValueError(f"training rows must start with query, positive; got {columns}")
    for row in rows:
        if list(row) != columns:
            raise ValueError(f"every training row needs the same columns {columns}; got {list(row)}")
    return columns


def _set_max_length(model, max_length: int) -> None:
    for module in model.modules():
        if hasattr(module, "max_seq_length") and hasattr(module, "auto_model"):
            module.max_seq_length = max_length


def steps_for(rows: int, batch_size: int, epochs: float) -> int:
    """Optimiser steps a round will take (the no-duplicates sampler may drop a few)."""
    return max(1, math.ceil(rows / max(1, batch_size) * epochs))


class _Recorder(TrainerCallback):
    """Collects the loss history and reports every step."""

    def __init__(self, on_step) -> None:
        self.on_step = on_step
        self.losses: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append({"step": state.global_step, "loss": float(logs["loss"]),
                                "learning_rate": float(logs.get("learning_rate", 0.0))})

    def on_step_end(self, args, state, control, **kwargs):
        check_interrupt()
        if self.on_step:
            last = self.losses[-1]["loss"] if self.losses else None
            self.on_step(state.global_step, state.max_steps, last)
