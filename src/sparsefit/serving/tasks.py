"""The studio's other background jobs, beside training: evaluations (``sparsefit evaluate``) and publishing
(``sparsefit publish``), each a child process run like a training job (:class:`~sparsefit.serving.jobs.JobManager`:
queued, watched by pid and start time, cancelled like Ctrl-C, listed again by a restarted studio).

* An evaluation writes into ``<workspace>/evaluations/<name>/`` (the CLI's report.json, per_query.csv,
  runs.jsonl, split.json and its indexes); its job file and log are in ``<workspace>/jobs/evaluate/``. It shares
  the training jobs' slots (``--max-jobs``): both take every core.
* A publish job pushes a finished run to a model hub and/or writes it as ``<workspace>/exports/<file>.tar.gz``;
  its job file and log are in ``<workspace>/jobs/publish/``. The hub token is kept in this process's memory
  until the job ends and reaches the child as ``HF_TOKEN``: never on its command line, in its job file, its log
  or an answer. The child runs online (without ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``): publishing is
  the one call the user asked for.

Example:
    >>> evaluations = EvaluationJobs(Path("studio"))                                 # doctest: +SKIP
    >>> evaluations.start_evaluation(catalog=..., judgments=..., models=[...], name=None, options={})  # doctest: +SKIP
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sparsefit.errors import SparsefitError
from sparsefit.files import read_json, write_atomic, write_json
from sparsefit.serving.job_options import JobError
from sparsefit.serving.jobs import NAME, JobManager, check_name

ENTRY = [sys.executable, "-m", "sparsefit.job_process"]  # `sparsefit` with Ctrl-C's handler put back (Cancel)


class EvaluationOptions(BaseModel):
    """What an evaluation may set besides its files and models, typed and bounded like the training options."""

    model_config = ConfigDict(extra="forbid")

    bm25: bool = Field(True, description="BM25 (bm25s) as the baseline row")
    retrieval: Literal["sparse", "bm25", "hybrid"] = Field(
        "sparse", description="sparse: the models; bm25: also Qdrant's BM25; hybrid: also each model fused with it")
    test_fraction: float | None = Field(None, gt=0, lt=1, description="share of queries held out (random split)")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


def check_evaluation_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` checked, defaults filled in; a :class:`JobError` (400) naming the option."""
    try:
        return EvaluationOptions.model_validate(options or {}).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "options"
        raise JobError(f"evaluation option {key!r}: {error['msg']}", hint="leave it out for the default") from None


def _last_error(tail: list[str]) -> str:
    """The CLI's one-line ``error:`` (else the last line) of a failed child's log."""
    line = next((line for line in reversed(tail) if line.startswith("error:")), tail[-1] if tail else "")
    return line.strip()[:400]


class EvaluationJobs(JobManager):
    """Evaluations of base models and runs' models on judged queries, each a ``sparsefit evaluate`` process."""

    prefix = "eval"
    required = ("run", "catalog", "judgments", "models", "options")

    def __init__(self, workspace: Path, *, max_running: int = 1, poll_seconds: float = 1.0,
                 lock: threading.RLock | None = None) -> None:
        super().__init__(workspace, max_running=max_running, poll_seconds=poll_seconds, outputs="evaluations",
                         records="jobs/evaluate", lock=lock)

    def start_evaluation(self, *, catalog: Path, judgments: Path, models: list[dict[str, Any]], name: str | None,
                         options: dict[str, Any], split: Path | None = None) -> dict[str, Any]:
        """Reserve ``evaluations/<name>`` and start (or queue) the evaluation. ``models``: ``{"model": alias or
        folder, "label": what the page calls it, "system": the report's name for it}``, checked by the caller."""
        name = name or None
        check_name(name, "evaluation")
        if not models:
            raise JobError("pick at least one model or run to evaluate")
        checked = check_evaluation_options(options)
        return self._create(name, {"catalog": str(catalog), "judgments": str(judgments), "models": models,
                                   "options": checked, "split": str(split) if split else None})

    def resume(self, job_id: str) -> dict[str, Any]:
        raise JobError("an evaluation does not resume", status=409, hint="start it again")

    def _argv(self, job: dict[str, Any]) -> list[str]:
        options = check_evaluation_options(job.get("options"))  # checked again: a job file may be edited
        folder = self.runs / job["run"]
        argv = [*ENTRY, "evaluate", job["catalog"], "--judgments", job["judgments"], "--output", str(folder)]
        for model in job["models"]:
            argv += ["--model", self._named(folder, model)]
        if not options["bm25"]:
            argv.append("--no-bm25")
        argv += ["--retrieval", options["retrieval"]]
        if options["test_fraction"] is not None:
            argv += ["--test-fraction", str(options["test_fraction"])]
        if options["seed"] is not None:
            argv += ["--seed", str(options["seed"])]
        if job.get("split"):
            argv += ["--split", job["split"]]
        return argv

    @staticmethod
    def _named(folder: Path, model: dict[str, Any]) -> str:
        """What ``--model`` gets. A run's model is read through ``<evaluation>/models/<run>/``: links to its files and a
        sparsefit.json that names it ``model["system"]`` ("run demo"), so that the report's row says which run it is
        (an exported model keeps its base model's name: a run of splade-tiny and splade-tiny itself would share one)."""
        if not model.get("run"):
            return str(model["model"])
        if not NAME.fullmatch(str(model["run"])):
            raise SparsefitError(f"the run name {model['run']!r} in the job file is not a run name")
        source, target = Path(model["model"]), folder / "models" / model["run"]
        if not (target / "sparsefit.json").is_file():
            target.mkdir(parents=True, exist_ok=True)
            for entry in source.iterdir():
                if entry.name != "sparsefit.json" and not (target / entry.name).is_symlink():
                    (target / entry.name).symlink_to(entry.resolve())
            meta = read_json(source / "sparsefit.json") if (source / "sparsefit.json").is_file() else {}
            write_json(target / "sparsefit.json", {**(meta if isinstance(meta, dict) else {}), "name": model["system"]})
        return str(target)

    def _outcome(self, job: dict[str, Any], code: int | None) -> tuple[str, str | None]:
        tail = self._log_tail(job["id"])
        if code in (0, None) and (self.runs / job["run"] / "report.json").is_file():
            return "finished", None
        if code == 130 or job.get("cancel_requested"):
            return "cancelled", None
        if code is None:
            return "failed", "the process ended while no studio watched it, and it wrote no report"
        return "failed", f"exited with code {code}" + (f": {_last_error(tail)}" if tail else "")

    def report(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The finished evaluation's report.json (None before it exists; a damaged one is a SparsefitError)."""
        file = self.runs / job["run"] / "report.json"
        return read_json(file) if file.is_file() else None

    def progress(self, job: dict[str, Any]) -> dict[str, Any]:
        """How far it got, from its folder: inputs loaded (split.json), models indexed, report written."""
        folder = self.runs / job["run"]
        indexed = 0
        for meta in (folder / "indexes").glob("*/sparsefit_meta.json"):
            try:
                indexed += bool(read_json(meta).get("complete"))
            except (SparsefitError, AttributeError):
                continue
        return {"inputs": (folder / "split.json").is_file(), "indexed": min(indexed, len(job["models"])),
                "models": len(job["models"]), "report": (folder / "report.json").is_file()}


class PublishJobs(JobManager):
    """Publishing runs to a model hub and writing them as .tar.gz archives, each a ``sparsefit publish`` process."""

    prefix = "export"
    required = ("run", "folder")

    def __init__(self, workspace: Path, *, max_running: int = 2, poll_seconds: float = 1.0) -> None:
        super().__init__(workspace, max_running=max_running, poll_seconds=poll_seconds, outputs="exports",
                         records="jobs/publish")
        self._tokens: dict[str, str] = {}  # job's token_ref -> the hub token, in memory only, until the job ends

    def start_publish(self, *, run: str, folder: Path, repo: str | None, private: bool, revision: str | None,
                      endpoint: str | None, license: str | None, archive: bool, token: str | None) -> dict[str, Any]:
        """Start publishing the run ``run`` (its ``folder``; every value checked by the caller). ``token``: the
        hub token for this call (None: the studio's own HF_TOKEN)."""
        ref = secrets.token_hex(8)
        if token:
            self._tokens[ref] = token
        stamp = time.strftime("%Y%m%d-%H%M%S")
        fields = {"folder": str(folder), "repo": repo, "private": private, "revision": revision, "endpoint": endpoint,
                  "license": license, "archive": f"{run}-{stamp}-{secrets.token_hex(2)}.tar.gz" if archive else None,
                  "token_ref": ref if token else None}
        try:
            job = self._create(run, fields, reserve=False)
        except BaseException:
            self._tokens.pop(ref, None)
            raise
        if job["status"] not in ("queued", "running"):
            self._tokens.pop(ref, None)  # it could not start: forget the token now
        return job

    def resume(self, job_id: str) -> dict[str, Any]:
        raise JobError("a publish job does not resume", status=409, hint="publish again")

    def archive(self, job: dict[str, Any]) -> Path | None:
        """The finished job's archive, when it asked for one and the file is there."""
        if not job.get("archive") or job["status"] != "finished":
            return None
        path = self.runs / Path(job["archive"]).name
        return path if path.is_file() else None

    def commit_url(self, job: dict[str, Any]) -> str | None:
        """The commit's URL, which the CLI prints last, once the job has finished."""
        if not job.get("repo") or job["status"] != "finished":
            return None
        return next((line.strip() for line in reversed(self._log_tail(job["id"], 40)) if "/commit/" in line
                     and line.strip().startswith(("http://", "https://"))), None)

    def _argv(self, job: dict[str, Any]) -> list[str]:
        argv = [*ENTRY, "publish", job["folder"]]
        if job.get("repo"):
            argv += ["--repo", job["repo"]]
            argv += ["--private"] if job.get("private") else []
            argv += ["--revision", job["revision"]] if job.get("revision") else []
            argv += ["--endpoint", job["endpoint"]] if job.get("endpoint") else []
        if job.get("license"):
            argv += ["--license", job["license"]]
        if job.get("archive"):
            argv += ["--to", str(self.runs / Path(job["archive"]).name)]
        return argv

    def _child_env(self, job: dict[str, Any]) -> dict[str, str]:
        env = super()._child_env(job)
        for offline in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # huggingface_hub reads either
            env.pop(offline, None)  # the studio may run offline; this call is the one the user asked for
        if job.get("token_ref"):
            token = self._tokens.get(job["token_ref"])
            if token is None:
                raise SparsefitError("its hub token is gone: the studio restarted before the job started",
                                     hint="publish again with the token")
            env["HF_TOKEN"] = token
        return env

    def _refresh(self, job: dict[str, Any]) -> dict[str, Any]:
        job = super()._refresh(job)
        if job["status"] not in ("queued", "running") and job.get("token_ref") in self._tokens:
            self._scrub(job["id"], self._tokens.pop(job["token_ref"]))
        return job

    def _scrub(self, job_id: str, token: str) -> None:
        """Take the token out of the job's log, should anything have printed it (the CLI never does)."""
        log = self.folder / f"{job_id}.log"
        try:
            text = log.read_text(errors="replace")
        except OSError:
            return
        if token in text:
            write_atomic(log, text.replace(token, "***"))

    def _outcome(self, job: dict[str, Any], code: int | None) -> tuple[str, str | None]:
        tail = self._log_tail(job["id"])
        done = ((not job.get("repo") or any(line.startswith("Published ") for line in tail))
                and (not job.get("archive") or (self.runs / Path(job["archive"]).name).is_file()))
        if code == 0 or (code is None and done):
            return "finished", None
        if code == 130 or job.get("cancel_requested"):
            return "cancelled", None
        if code is None:
            return "failed", "the process ended while no studio watched it" + (f": {_last_error(tail)}" if tail else "")
        return "failed", f"exited with code {code}" + (f": {_last_error(tail)}" if tail else "")

    def _release(self, run: str) -> None:
        """Nothing to give back: a publish job reserves no folder (``run`` is the published run's, kept)."""
