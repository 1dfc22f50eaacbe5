"""What the trainer records between stages: evaluated systems, live progress, damaged checkpoints.

Kept apart from the trainer's control flow so the records a resumed run reads back are in one place.
"""

from __future__ import annotations

import time
from pathlib import Path

from sparsefit.evaluation.report import SystemResult
from sparsefit.files import read_json, write_json
from sparsefit.run import RunFolder


class LiveTraining:
    """``live.json``: the training round in progress, its step and its loss curve so far (read by the studio)."""

    def __init__(self, file: Path, round_no: int, total: int) -> None:
        self.file, self.round, self.total = file, round_no, total
        self.losses: list[dict[str, float]] = []
        self._last_loss: float | None = None
        self.last_write = 0.0

    def update(self, step: int, steps: int, loss: float | None, *, finished: bool = False) -> None:
        if loss is not None and loss != self._last_loss:
            self._last_loss = loss
            self.losses.append({"step": step, "loss": round(loss, 5)})
        now = time.perf_counter()
        if finished or now - self.last_write >= 1.0:  # at most once a second
            self.last_write = now
            write_json(self.file, {"round": self.round, "step": step, "steps": max(steps, step), "finished": finished,
                                   "losses": self.losses})


class DamagedCheckpoint(Exception):
    """A finished round's saved model no longer loads; the round is trained again."""

    def __init__(self, round_no: int, reason: str) -> None:
        super().__init__(f"round {round_no}: {reason}")
        self.round = round_no
        self.reason = reason


def read_optional(path: Path) -> dict:
    """A JSON object kept by the run, or {} before its first write."""
    return read_json(path) if path.is_file() else {}


def save_systems(folder: Path, systems: list[SystemResult]) -> None:
    """A stage's systems with their per-query metrics and top-100 runs, so a resumed run reports them unchanged."""
    write_json(RunFolder.metrics(folder), [
        {"name": s.name, "kind": s.kind, "mean": s.mean, "seconds": s.seconds, "per_query": s.per_query,
         "run": {k: [[d, sc] for d, sc in v[:100]] for k, v in s.run.items()}}
        for s in systems
    ])


def load_systems(folder: Path) -> list[SystemResult]:
    """The systems :func:`save_systems` wrote in ``folder``."""
    return [
        SystemResult(name=d["name"], kind=d["kind"], per_query=d["per_query"], mean=d["mean"], seconds=d["seconds"],
                     run={k: [(doc, score) for doc, score in v] for k, v in d["run"].items()})
        for d in read_json(RunFolder.metrics(folder))
    ]
