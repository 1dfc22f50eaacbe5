"""One round's training with the run's recipe (options from the settings, a progress bar, live.json for the
studio), shared by the single-catalog and the multi-domain trainers."""

from __future__ import annotations

import math

from sparsefit import distributed
from sparsefit.config import Settings
from sparsefit.models import Encoder
from sparsefit.pipeline.records import LiveTraining
from sparsefit.progress import progress_bar
from sparsefit.run import RunFolder


def round_epochs(settings: Settings, n: int) -> float:
    """Epochs over the training rows in round ``n``."""
    return settings.epochs if n == 0 or settings.mining_epochs is None else settings.mining_epochs


def train_rows(encoder: Encoder, rows: list[dict[str, str]], n: int, settings: Settings, device: str, run: RunFolder, *,
               show_progress: bool = True, mix=None):
    """Train ``encoder`` in place on round ``n``'s rows with the run's recipe, showing progress and writing live.json.

    ``mix`` (a :class:`~sparsefit.domain_batches.DomainMix`): the rows are several domains' rows, and each batch
    comes from one of them."""
    from sparsefit.devices import training_precision
    from sparsefit.training import TrainingOptions, steps_for, train_round

    s = settings
    options = TrainingOptions(
        batch_size=s.train_batch_size, learning_rate=s.learning_rate, static_learning_rate=s.static_learning_rate,
        epochs=round_epochs(s, n), query_regularizer_weight=s.query_regularizer_weight,
        document_regularizer_weight=s.document_regularizer_weight, max_seq_length=s.train_max_seq_length,
        precision=training_precision(s.train_precision, device, hidden_size=encoder.hidden_size), seed=s.seed + n,
        device=device,
    )
    batch = min(s.train_batch_size, len(rows))
    total = (steps_for(len(rows), batch, options.epochs) if mix is None
             else max(1, math.ceil(mix.steps_per_epoch(batch) * options.epochs)))
    live = LiveTraining(run.live, n, total)
    with progress_bar(f"round {n}: training on {len(rows):,} rows", total, enabled=show_progress) as advance:

        def on_step(step: int, steps: int, loss: float | None) -> None:
            advance(1)
            live.update(step, steps, loss)

        if mix is None:
            distributed.send(distributed.Message("train", rows=rows, options=options, round=n))  # followers train beside us
        stats = train_round(encoder, rows, options, run.round(n) / "trainer", on_step=on_step, mix=mix)
    live.update(total, total, None, finished=True)
    encoder.model.max_seq_length = s.max_seq_length
    return stats
