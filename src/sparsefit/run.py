"""The run folder: where each of a run's files lives, which stages are finished, and named output folders.

A run folder is written by ``sparsefit train``/``evaluate`` and read by ``serve``, ``search`` and the
studio. :class:`RunFolder` is the one place that knows its file names and its stage names.

Example:
    >>> import tempfile, pathlib
    >>> run = RunFolder(pathlib.Path(tempfile.mkdtemp()))
    >>> run.round(2).name, run.train_stage(2), run.evaluate_stage(2)
    ('2', 'round-2/train', 'round-2/evaluate')
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sparsefit.errors import SparsefitError
from sparsefit.files import read_json, write_json
from sparsefit.interrupt import check as check_interrupt


def new_run_folder(kind: str, root: Path = Path("runs")) -> Path:
    """A fresh folder ``runs/<kind>-<UTC time>`` (suffixed if it exists)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = root / f"{kind}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = root / f"{kind}-{stamp}-{suffix}"
    return folder


class RunFolder:
    """Where each file of a run lives, the names of its stages, and the metrics it has so far.

    Writers (the trainer, ``evaluate``) and readers (``serve``, ``search``, the studio) go through it, so a
    file name is typed once. Stages are ``inputs``, ``queries``, ``baselines``, ``round-N/train``,
    ``round-N/evaluate``, ``average/evaluate``, ``hybrid`` and ``export``.
    """

    EXPORT = "export"
    BASELINES = "baselines"
    AVERAGE = "average"  # the weight average of the rounds' models (the exported model by default)
    AVERAGE_EVALUATED = "average/evaluate"
    HYBRID = "hybrid"  # the exported model fused with Qdrant's BM25, weights fitted on the validation queries

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- files -------------------------------------------------------------------------------
    config = property(lambda self: self.path / "config.yaml", doc="the resolved settings (YAML)")
    sources = property(lambda self: self.path / "run.json", doc="the catalog and judgments files the run reads")
    state_file = property(lambda self: self.path / "state.json", doc="the finished stages")
    timings = property(lambda self: self.path / "timings.json", doc="seconds per stage")
    live = property(lambda self: self.path / "live.json", doc="the training round in progress (for the studio)")
    split = property(lambda self: self.path / "split.json", doc="which queries are train and test")
    inputs = property(lambda self: self.path / "inputs.json", doc="what was loaded and detected")
    queries = property(lambda self: self.path / "queries.jsonl", doc="generated training queries (no judgments given)")
    queries_info = property(lambda self: self.path / "queries.json", doc="how the training queries were generated")
    repairs = property(lambda self: self.path / "repairs.json", doc="rounds trained again after a damaged checkpoint")
    card = property(lambda self: self.path / "README.md", doc="the model card")
    confidence = property(lambda self: self.path / "confidence.json", doc="the per-hit confidence model")
    confidence_problem = property(lambda self: self.path / "confidence_problem.txt", doc="why there is no confidence.json")
    model = property(lambda self: self.path / "model", doc="the exported SparseEncoder")
    index = property(lambda self: self.path / "index", doc="the Qdrant Edge index of the exported model")
    baselines = property(lambda self: self.path / self.BASELINES, doc="BM25 and the untuned base model's metrics")
    average = property(lambda self: self.path / self.AVERAGE, doc="the rounds' weight average: model and metrics")
    hybrid = property(lambda self: self.path / self.HYBRID, doc="the exported model + Qdrant's BM25: metrics")
    validation = property(lambda self: self.path / "validation.json",
                          doc="the training queries kept out of training to fit fusion weights on")
    fusion = property(lambda self: self.path / "fusion.json", doc="the fitted hybrid fusions (base and tuned model)")
    feedback = property(lambda self: self.path / "feedback.json",
                        doc="relevance feedback: the fitted coefficients and the held-out result of one simulated round")

    def round(self, n: int) -> Path:
        """Round ``n``'s folder: model/, training.json, metrics.json, negatives.json, mining.json."""
        return self.path / "rounds" / str(n)

    @staticmethod
    def metrics(stage_folder: Path) -> Path:
        """A stage's held-out metrics (a round's, the baselines', the average's)."""
        return stage_folder / "metrics.json"

    @staticmethod
    def vectors(stage_folder: Path) -> Path:
        """The catalog's vectors under a stage's model (mining reuses them)."""
        return stage_folder / "catalog_vectors.npz"

    @staticmethod
    def stage_model(stage_folder: Path) -> Path:
        """A round's (or the average's) saved SparseEncoder."""
        return stage_folder / "model"

    def training(self, n: int) -> Path:
        """What round ``n``'s training did: steps, losses, device (:class:`~sparsefit.training.RoundStats`)."""
        return self.round(n) / "training.json"

    def negatives(self, n: int) -> Path:
        """The hard negatives mined for round ``n`` (kept, so a resumed round trains on the same rows)."""
        return self.round(n) / "negatives.json"

    def mining(self, n: int) -> Path:
        """Counts from round ``n``'s mining pass."""
        return self.round(n) / "mining.json"

    # -- stages ------------------------------------------------------------------------------
    @staticmethod
    def train_stage(n: int) -> str:
        return f"round-{n}/train"

    @staticmethod
    def evaluate_stage(n: int) -> str:
        return f"round-{n}/evaluate"

    @staticmethod
    def stage_round(stage: str) -> int | None:
        """The round a stage belongs to (None for the others)."""
        head = stage.split("/", 1)[0]
        return int(head[6:]) if head.startswith("round-") and head[6:].isdigit() else None

    def describe_stages(self) -> list[dict[str, Any]]:
        """The finished stages as data (name, kind, round) for the studio, so no page parses stage names."""
        out = []
        for stage in finished_stages(self.path):
            n = self.stage_round(stage)
            kind = stage.rsplit("/", 1)[-1] if "/" in stage else stage
            out.append({"stage": stage, "kind": kind, "round": n, "average": stage.startswith(self.AVERAGE)})
        return out

    # -- reading -----------------------------------------------------------------------------
    def read_sources(self) -> dict[str, str | None]:
        """``{"catalog": path, "judgments": path or None}`` as the run was started."""
        data = read_json(self.sources)
        if not isinstance(data, dict) or not isinstance(data.get("catalog"), str):
            raise SparsefitError("file is damaged (no catalog path)", file=self.sources,
                                 hint="write it again as {\"catalog\": \"...\", \"judgments\": \"...\"}")
        return {"catalog": data["catalog"], "judgments": data.get("judgments")}

    def training_losses(self) -> dict[str, list[dict[str, float]]]:
        """The logged training loss of every trained round: ``{"0": [{"step", "loss"}, ...], ...}``."""
        out = {}
        for training in sorted((self.path / "rounds").glob(f"*/{self.training(0).name}"), key=lambda f: f.parent.name.zfill(6)):
            data = read_json(training)
            losses = data.get("losses", []) if isinstance(data, dict) else None
            if not isinstance(losses, list):
                raise SparsefitError("file is damaged (no list of losses)", file=training,
                                     hint="delete the round's folder and resume the run to train it again")
            out[training.parent.name] = [{"step": x["step"], "loss": x["loss"]} for x in losses]
        return out

    def systems(self) -> list[dict[str, Any]]:
        """Every evaluated system so far, in order: baselines, the rounds, the rounds' average.

        Each: name, kind, role (``bm25``, ``bm25-qdrant``, ``base``, ``hybrid-base``, ``round``, ``average``,
        ``hybrid``), round (or None), mean metrics,
        seconds, and the nDCG@10 ratio to BM25. A damaged metrics file is an error that names it (files are
        written atomically, so a damaged one is not a file being written).
        """
        files = [(file, "baseline", None) for file in sorted(self.baselines.glob("metrics.json"))]
        rounds = sorted((self.path / "rounds").glob("*/metrics.json"),
                        key=lambda f: int(f.parent.name) if f.parent.name.isdigit() else -1)
        files += [(file, "round", int(file.parent.name)) for file in rounds if file.parent.name.isdigit()]
        files += [(file, "average", None) for file in [self.metrics(self.average)] if file.is_file()]
        files += [(file, "hybrid", None) for file in [self.metrics(self.hybrid)] if file.is_file()]
        out = []
        for file, source, n in files:
            data = read_json(file)
            for system in data if isinstance(data, list) else [data]:
                if not isinstance(system, dict) or not isinstance(system.get("mean"), dict) or "name" not in system:
                    raise SparsefitError("file is damaged (a system without its name or mean metrics)", file=file,
                                         hint="delete it and resume the run to evaluate that stage again")
                roles = {"bm25": "bm25-qdrant", "hybrid": "hybrid-base", "dense": "dense", "hybrid-dense": "hybrid-dense-base"}
                role = (source if source != "baseline" else "bm25" if system["name"] == "bm25"
                        else roles.get(system.get("kind"), "base"))
                if source == "hybrid" and system.get("kind") == "hybrid-dense":
                    role = "hybrid-dense"
                out.append({"name": system["name"], "kind": system.get("kind"), "role": role, "round": n,
                            "metrics": system["mean"], "seconds": system.get("seconds", {}), "source": source})
        bm25 = next((s["metrics"].get("ndcg@10") for s in out if s["name"] == "bm25"), None)
        for s in out:
            s["ndcg@10_vs_baseline"] = round(s["metrics"]["ndcg@10"] / bm25, 4) if bm25 else None
        return out


class RunState:
    """The finished stages of a run folder, kept in state.json and written atomically after each stage.

    Example:
        >>> import tempfile, pathlib
        >>> state = RunState(pathlib.Path(tempfile.mkdtemp()))
        >>> state.mark("round-0/train"); state.done("round-0/train")
        True
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = RunFolder(self.folder).state_file
        self.stages: list[str] = _finished_stages(self.path)

    def done(self, stage: str) -> bool:
        return stage in self.stages

    def forget(self, stages: list[str]) -> None:
        """Mark ``stages`` as not done (their work will be redone)."""
        self.stages = [s for s in self.stages if s not in set(stages)]
        write_json(self.path, {"done": self.stages})

    def mark(self, stage: str) -> None:
        if stage not in self.stages:
            self.stages.append(stage)
        write_json(self.path, {"done": self.stages})
        check_interrupt()  # the stage is kept; a Ctrl-C pressed during it stops the run here at the latest


def _finished_stages(path: Path) -> list[str]:
    if not path.is_file():
        return []
    data = read_json(path)
    done = data.get("done") if isinstance(data, dict) else None
    if not isinstance(done, list) or not all(isinstance(stage, str) for stage in done):
        raise SparsefitError("file is damaged (no list of finished stages)", file=path,
                             hint="delete it and resume the run: its stages are then redone")
    return done


def finished_stages(folder: Path) -> list[str]:
    """The run's finished stages for a reader that must not fail (a listing, a status): [] when damaged."""
    try:
        return RunState(folder).stages
    except SparsefitError:
        return []


def exported(folder: Path) -> bool:
    """Whether the run in ``folder`` has exported its model: the one test of a finished run."""
    return "export" in finished_stages(folder)
