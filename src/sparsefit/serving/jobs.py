"""Studio jobs: training runs started from the web page, each a `sparsefit train` child process.

A job is a JSON file and a log file in ``<workspace>/jobs``; its run folder is ``<workspace>/runs/<name>``.
Jobs outlive the studio: a restarted studio lists them, and a run killed with the studio resumes
with ``sparsefit train --resume``.

Example:
    >>> jobs = JobManager(Path("studio"))                                    # doctest: +SKIP
    >>> job = jobs.start(catalog=Path("examples/catalog.csv"), judgments=None, name="demo", options={"rounds": 2})  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sparsefit.errors import SparsefitError
from sparsefit.run import make_folder, read_json, write_json

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Training options the studio may set, with the CLI flag each one becomes.
OPTIONS = {"rounds": "--rounds", "base_model": "--base-model", "epochs": "--epochs", "mining_epochs": "--mining-epochs",
           "negatives": "--negatives", "train_batch_size": "--train-batch-size",
           "queries_per_product": "--queries-per-product", "query_products": "--query-products", "seed": "--seed",
           "search_posting_cap": "--search-posting-cap"}


class JobManager:
    """Starts, lists and cancels training jobs under one workspace."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.runs = make_folder(workspace / "runs")
        self.folder = make_folder(workspace / "jobs")
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def start(self, *, catalog: Path, judgments: Path | None, name: str | None, options: dict[str, Any]) -> dict[str, Any]:
        name = name or time.strftime("run-%Y%m%d-%H%M%S")
        if not NAME.match(name):
            raise SparsefitError(f"run name {name!r} is not allowed",
                                 hint="use letters, digits, '-', '_' or '.', at most 64 characters")
        run = self.runs / name
        if run.exists():
            raise SparsefitError(f"a run named {name!r} exists already", hint="pick another name")
        argv = [sys.executable, "-m", "sparsefit.serving.job_process", "train", str(catalog), "--output", str(run)]
        if judgments is not None:
            argv += ["--judgments", str(judgments)]
        for key, value in options.items():
            if key not in OPTIONS:
                raise SparsefitError(f"unknown training option {key!r}", hint="use one of " + ", ".join(sorted(OPTIONS)))
            if value is not None:
                argv += [OPTIONS[key], str(value)]
        job_id = uuid.uuid4().hex[:10]
        log = self.folder / f"{job_id}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self._lock:
            with open(log, "wb") as out:
                process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            self._processes[job_id] = process
            job = {"id": job_id, "run": name, "catalog": str(catalog), "judgments": str(judgments) if judgments else None,
                   "options": options, "pid": process.pid, "started": time.time(), "finished": None,
                   "returncode": None, "status": "running"}
            write_json(self.folder / f"{job_id}.json", job)
        return job

    def get(self, job_id: str) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9a-f]{10}", job_id) or not (self.folder / f"{job_id}.json").is_file():
            raise KeyError(job_id)
        return self._refresh(read_json(self.folder / f"{job_id}.json"))

    def list(self) -> list[dict[str, Any]]:
        jobs = [self.get(f.stem) for f in self.folder.glob("*.json")]
        return sorted(jobs, key=lambda j: j["started"], reverse=True)

    def log(self, job_id: str, lines: int = 40) -> list[str]:
        self.get(job_id)
        text = (self.folder / f"{job_id}.log").read_text(errors="replace")
        return text.splitlines()[-lines:]

    def cancel(self, job_id: str) -> dict[str, Any]:
        job = self.get(job_id)
        if job["status"] == "running":
            try:
                os.killpg(job["pid"], signal.SIGINT)  # like Ctrl-C: finished rounds are kept, --resume continues
            except ProcessLookupError:
                pass
        return job

    def _refresh(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["status"] != "running":
            return job
        process = self._processes.get(job["id"])
        code = process.poll() if process is not None else _poll_pid(job["pid"])
        if code is None:
            return job
        job.update(status="finished" if code == 0 else ("cancelled" if code == 130 else "failed"),
                   returncode=code, finished=time.time())
        write_json(self.folder / f"{job['id']}.json", job)
        return job


def _poll_pid(pid: int) -> int | None:
    """Exit status of a job started by an earlier studio: None while it runs, -1 once gone (code unknown)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return -1
    except PermissionError:
        return None
    return None
