"""Studio jobs: training runs started from the web page, each a `sparsefit train` child process.

A job is a JSON file and a log file in ``<workspace>/jobs``; its run folder is ``<workspace>/runs/<name>``.
Jobs outlive the studio: a restarted studio lists them, and a run killed with the studio resumes
with ``sparsefit train --resume``.

Why it is careful:

* A run folder is reserved with an atomic ``mkdir`` under the manager's lock, so two requests never
  share one folder (the second gets a 409), and default names carry random hex so two unnamed jobs
  in the same second differ.
* At most ``max_running`` jobs train at once (training takes every core); the rest wait as
  ``queued`` and start, oldest first, as running ones end.
* A job's status comes from its run's own state (``export`` done = finished) and from its process,
  identified by pid *and* start time, so a restarted studio neither calls a finished run "failed"
  nor a stranger that reused the pid "running". An exit code that nobody saw stays ``None``.
* Options are typed and bounded (:class:`JobOptions`) and the base model is an offline alias or a
  folder under the allowed roots, so nothing unchecked reaches the command line.

Example:
    >>> jobs = JobManager(Path("studio"))                                    # doctest: +SKIP
    >>> job = jobs.start(catalog=Path("examples/catalog.csv"), judgments=None, name="demo", options={"rounds": 2})  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sparsefit.errors import SparsefitError
from sparsefit.files import make_folder, read_json, write_json
from sparsefit.run import exported
from sparsefit.serving.job_options import OPTIONS, JobError, check_base_model, parse_options

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: "$" would allow a final newline
JOB_ID = re.compile(r"[0-9a-f]{10}")
# What `sparsefit train` prints when Ctrl-C (or Cancel) stops it.
STOPPED = "Stopped. Finished stages are kept"
STATUSES = ("queued", "running", "finished", "failed", "cancelled")


class JobManager:
    """Starts, queues, lists and cancels training jobs under one workspace.

    ``max_running`` jobs train at once (default 1: a run uses every core); later ones wait as ``queued``.
    ``poll_seconds`` is how often a background thread checks whether a queued job can start.

    The studio's other background jobs (evaluations, publishing: ``sparsefit.serving.tasks``) are subclasses:
    ``outputs`` is the workspace folder their output folders are reserved in, ``records`` the one of their job
    files and logs. ``environment`` gives variables for each child process (secrets reach it there, never on
    its command line nor in its job file). Managers that share ``lock`` and list each other in ``peers`` share
    the ``max_running`` slots: a training run and an evaluation each take every core.
    """

    prefix = "run"  # of default output names: run-<time>-<hex>
    required: tuple[str, ...] = ("run", "catalog", "judgments", "options")  # a job file without them is skipped

    def __init__(self, workspace: Path, *, max_running: int = 1, poll_seconds: float = 1.0, outputs: str = "runs",
                 records: str = "jobs", environment: Callable[[], dict[str, str]] | None = None,
                 lock: threading.RLock | None = None) -> None:
        if max_running < 1:
            raise ValueError("max_running must be at least 1")
        self.workspace = workspace
        self.runs = make_folder(workspace / outputs)
        self.folder = make_folder(workspace / records)
        self.max_running = max_running
        self.poll_seconds = poll_seconds
        self.environment = environment
        self.peers: list[JobManager] = []
        self._processes: dict[str, subprocess.Popen] = {}
        # one job file is written by one thread at a time; reentrant for get() in cancel(); shared with the peers
        self._lock = lock if lock is not None else threading.RLock()
        self._watcher: threading.Thread | None = None
        if any(job["status"] == "queued" for job in self._records()):
            self._watch()  # a restarted studio carries on with its queue

    # -- public ------------------------------------------------------------------------------
    def start(self, *, catalog: Path, judgments: Path | None, name: str | None, options: dict[str, Any],
              allowed_roots: Sequence[Path] | None = None) -> dict[str, Any]:
        """Reserve the run folder and start the job, or queue it while ``max_running`` jobs train.

        ``allowed_roots`` (default: the workspace) are where a ``base_model`` folder may lie.
        Raises :class:`JobError`: 400 bad name or option, 403 base model outside the roots, 409 name taken.
        """
        name = name or None  # an empty name field: a default name, as before
        checked = parse_options(options)
        if "base_model" in checked:
            checked["base_model"] = check_base_model(checked["base_model"], allowed_roots or [self.workspace])
        check_name(name, "run")
        return self._create(name, {"catalog": str(catalog), "judgments": str(judgments) if judgments else None,
                                   "options": checked})

    def get(self, job_id: str) -> dict[str, Any]:
        """One job, its status brought up to date (KeyError if there is none)."""
        if not JOB_ID.fullmatch(job_id) or not (self.folder / f"{job_id}.json").is_file():
            raise KeyError(job_id)
        with self._lock:
            return self._by_id(self._pump(), job_id)

    def list(self) -> list[dict[str, Any]]:
        """Every job, newest first, statuses up to date (queued jobs start here when a slot is free)."""
        with self._lock:
            jobs = self._pump()
        return sorted(jobs, key=_created, reverse=True)

    def log(self, job_id: str, lines: int = 40) -> list[str]:
        self.get(job_id)
        path = self.folder / f"{job_id}.log"
        return path.read_text(errors="replace").splitlines()[-lines:] if path.is_file() else []

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Stop a running job like Ctrl-C (finished stages are kept, --resume continues), or drop a queued one."""
        with self._lock:
            job = self.get(job_id)
            if job["status"] == "queued":
                job.update(status="cancelled", finished=time.time(), reason="cancelled before it started")
                self._save(job)
                self._release(job["run"])
            elif job["status"] == "running":
                job["cancel_requested"] = True
                self._save(job)
                try:
                    os.killpg(job["pid"], signal.SIGINT)  # the process group: _refresh has just checked it is ours
                except (ProcessLookupError, PermissionError):
                    pass
            return job

    def resume(self, job_id: str) -> dict[str, Any]:
        """Continue a cancelled or failed job's run where it stopped (``sparsefit train --resume``): the same job,
        queued again; its log goes on. 409 when the job is not stopped or its run never got as far as starting."""
        with self._lock:
            job = self.get(job_id)
            if job["status"] not in ("cancelled", "failed"):
                raise JobError(f"job {job_id} is {job['status']}: only a cancelled or failed job resumes", status=409,
                               hint="cancel it first" if job["status"] == "running" else "start a new job")
            if not (self.runs / job["run"] / "run.json").is_file():
                raise JobError(f"the run {job['run']!r} stopped before it started; there is nothing to resume",
                               status=409, hint="start a new job with the same files")
            if any(other["run"] == job["run"] and other["status"] in ("queued", "running") for other in self._records()):
                raise JobError(f"another job is already training the run {job['run']!r}", status=409)
            job.update(status="queued", resume=True, pid=None, pid_start=None, started=None, finished=None,
                       returncode=None, reason=None, cancel_requested=False, created=time.time())
            self._save(job)
            return self._by_id(self._pump(), job_id)

    # -- internals ---------------------------------------------------------------------------
    def _create(self, name: str | None, fields: dict[str, Any], *, reserve: bool = True) -> dict[str, Any]:
        """A new job of ``fields`` (its ``run``: ``name``'s output folder, reserved unless ``reserve`` is False),
        queued, and started at once when a slot is free."""
        with self._lock:
            run = self._reserve(name) if reserve else name
            job_id = uuid.uuid4().hex[:10]
            while (self.folder / f"{job_id}.json").exists():
                job_id = uuid.uuid4().hex[:10]
            (self.folder / f"{job_id}.log").write_bytes(b"")
            job = {"id": job_id, "run": run, **fields, "pid": None, "pid_start": None, "created": time.time(),
                   "started": None, "finished": None, "returncode": None, "status": "queued", "reason": None,
                   "cancel_requested": False}
            self._save(job)
            return self._by_id(self._pump(), job_id)

    def _records(self) -> list[dict[str, Any]]:
        """The job files as stored; a damaged one is skipped rather than failing the whole list."""
        jobs = []
        for file in self.folder.glob("*.json"):
            if not JOB_ID.fullmatch(file.stem):
                continue
            try:
                job = read_json(file)
            except SparsefitError:
                continue
            if (isinstance(job, dict) and job.get("id") == file.stem and job.get("status") in STATUSES
                    and all(key in job for key in self.required)):
                jobs.append(job)
        return jobs

    def _pump(self) -> list[dict[str, Any]]:
        """Refresh every job, then start queued ones, oldest first, while fewer than ``max_running`` run."""
        with self._lock:
            jobs = [self._refresh(job) for job in self._records()]
            free = self.max_running - sum(job["status"] == "running" for job in jobs) - self._peers_running()
            queued = sorted((job for job in jobs if job["status"] == "queued"), key=_created)
            for job in queued[:max(free, 0)]:
                self._launch(job)
            if len(queued) > max(free, 0):
                self._watch()
            return jobs

    def _peers_running(self) -> int:
        """The peers' jobs whose processes run now (under the shared lock; an ended process is a zombie until
        its manager looks, and is_our_process does not count it)."""
        return sum(1 for peer in self.peers for job in peer._records()
                   if job["status"] == "running" and is_our_process(job.get("pid"), job.get("pid_start"), job.get("started")))

    def _reserve(self, name: str | None) -> str:
        """Create the run folder atomically (``mkdir`` fails if it exists): the name is then this job's alone."""
        while True:
            candidate = name or f"{self.prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
            try:
                (self.runs / candidate).mkdir(exist_ok=False)
                return candidate
            except FileExistsError:
                if name is not None:
                    raise JobError(f"a run named {name!r} exists already", status=409, hint="pick another name") from None
            except OSError as exc:
                raise JobError(f"cannot create the run folder {candidate!r} ({exc.strerror or exc})",
                               hint="check the workspace's permissions and free disk space") from None

    def _argv(self, job: dict[str, Any]) -> list[str]:
        if job.get("resume"):  # the run's own catalog, judgments and saved settings
            return [sys.executable, "-m", "sparsefit.job_process", "train", "--resume", str(self.runs / job["run"])]
        argv = [sys.executable, "-m", "sparsefit.job_process", "train", job["catalog"],
                "--output", str(self.runs / job["run"])]
        if job["judgments"]:
            argv += ["--judgments", job["judgments"]]
        for key, value in parse_options(job["options"]).items():  # checked again: a job file may be edited
            argv += [OPTIONS[key], str(value)]
        return argv

    def _launch(self, job: dict[str, Any]) -> None:
        """Start a queued job's process; a job that cannot start is failed with the reason."""
        try:
            env = self._child_env(job)
            argv = self._argv(job)
            with open(self.folder / f"{job['id']}.log", "ab" if job.get("resume") else "wb") as out:
                if job.get("resume"):
                    out.write(f"\n--- resumed {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
                    out.flush()
                process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except (OSError, SparsefitError) as exc:
            job.update(status="failed", finished=time.time(), reason=f"the process could not start: {exc}")
            self._save(job)
            self._release(job["run"])
            return
        self._processes[job["id"]] = process
        job.update(status="running", pid=process.pid, pid_start=process_start_time(process.pid), started=time.time())
        self._save(job)

    def _child_env(self, job: dict[str, Any]) -> dict[str, str]:
        """The child's environment: the studio's, unbuffered output, and what ``environment`` adds (secrets)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.environment is not None:
            env.update(self.environment())
        return env

    def _refresh(self, job: dict[str, Any]) -> dict[str, Any]:
        """A running job's status from its process and its run's state; saved once it changes."""
        legacy = job["status"] == "failed" and job.get("returncode") == -1  # an older studio's guess: look again
        if job["status"] != "running" and not legacy:
            return job
        code = None
        process = self._processes.get(job["id"])
        if process is not None:
            code = process.poll()
            if code is None:
                return job
            del self._processes[job["id"]]
        elif not legacy and is_our_process(job.get("pid"), job.get("pid_start"), job.get("started")):
            return job
        status, reason = self._outcome(job, code)
        job.update(status=status, returncode=code, reason=reason, finished=job.get("finished") or time.time())
        self._save(job)
        if status != "finished":
            self._release(job["run"])
        return job

    def _outcome(self, job: dict[str, Any], code: int | None) -> tuple[str, str | None]:
        """Why an ended job ended: the run's state first, then the exit code, then the log; never a made-up code."""
        if exported(self.runs / job["run"]):
            return "finished", None
        tail = self._log_tail(job["id"])
        if code == 130 or job.get("cancel_requested") or any(STOPPED in line for line in tail):
            return "cancelled", None
        last = tail[-1].strip()[:300] if tail else ""
        if code is None:
            return "failed", ("the process ended while no studio watched it; its exit code is unknown and the run "
                              "exported no model" + (f"; last log line: {last}" if last else ""))
        return "failed", f"exited with code {code}" + (f": {last}" if last else "")

    def _log_tail(self, job_id: str, lines: int = 20) -> list[str]:
        path = self.folder / f"{job_id}.log"
        try:
            with open(path, "rb") as log:
                log.seek(max(0, path.stat().st_size - 16384))
                return [line for line in log.read().decode(errors="replace").splitlines() if line.strip()][-lines:]
        except OSError:
            return []

    def _release(self, run: str) -> None:
        """Give the name back when the job left its run folder empty (never started, or failed at once)."""
        try:
            (self.runs / run).rmdir()
        except OSError:
            pass

    def _save(self, job: dict[str, Any]) -> None:
        write_json(self.folder / f"{job['id']}.json", job)

    @staticmethod
    def _by_id(jobs: list[dict[str, Any]], job_id: str) -> dict[str, Any]:
        for job in jobs:
            if job["id"] == job_id:
                return job
        raise KeyError(job_id)

    def _watch(self) -> None:
        """Start the thread that starts queued jobs when running ones end, unless it runs already."""
        with self._lock:
            if self._watcher is not None and self._watcher.is_alive():
                return
            self._watcher = threading.Thread(target=self._watch_loop, name="sparsefit-job-queue", daemon=True)
            self._watcher.start()

    def _watch_loop(self) -> None:
        while True:
            time.sleep(self.poll_seconds)
            with self._lock:
                try:
                    jobs = self._pump()
                except Exception:
                    continue
                if not any(job["status"] == "queued" for job in jobs):
                    self._watcher = None
                    return


def check_name(name: str | None, what: str) -> None:
    """A :class:`JobError` (400) unless ``name`` (None: a default one) can name a folder of the workspace."""
    if name is not None and not NAME.fullmatch(name):
        raise JobError(f"{what} name {name!r} is not allowed", hint="use letters, digits, '-', '_' or '.', at most 64 characters")


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None where unknown.
    With the pid it names one process: a pid reused by another process has another start time."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def is_our_process(pid: int | None, started: int | None, started_at: float | None = None) -> bool:
    """Whether the process ``pid`` that started at ``started`` (see :func:`process_start_time`) still runs.

    A job file from before start times were kept has only ``started_at`` (the wall clock when the studio
    started it): the process must have started within a few seconds of it, or the pid was reused."""
    if pid is None:
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state in ("Z", "X", "x"):
            return False
        if started is not None:
            return start == started
        boot = _boot_time()
        return boot is not None and started_at is not None and abs(boot + start / os.sysconf("SC_CLK_TCK") - started_at) < 5
    if Path("/proc/self/stat").is_file():
        return False  # Linux, and no such process
    try:  # elsewhere only liveness can be checked
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _boot_time() -> float | None:
    """When this machine booted (seconds since the epoch), from /proc/stat; None where unknown."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of ``pid`` from /proc; the name in parentheses may hold spaces, so split after it."""
    try:
        text = Path(f"/proc/{int(pid)}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return fields[0], int(fields[19])  # fields 3 and 22
    except (OSError, ValueError, IndexError):
        return None


def _created(job: dict[str, Any]) -> float:
    return job.get("created") or job.get("started") or 0.0
