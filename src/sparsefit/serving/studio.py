"""What the studio's pages share: the workspace, the allowed roots, the runs, the job managers and the settings,
made once by ``create_app`` and handed to each page's router (``pages_*.py``).

Example:
    >>> studio = Studio.open(Path("sparsefit-studio"), roots=[Path("data")], runs=Runs([], None))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from sparsefit.errors import SparsefitError
from sparsefit.serving.job_options import JobError, under_roots
from sparsefit.serving.jobs import JobManager
from sparsefit.serving.registry import Runs
from sparsefit.serving.studio_settings import StudioSettings
from sparsefit.serving.tasks import EvaluationJobs, PublishJobs


@dataclass
class Studio:
    """The studio's state: ``runs`` by name, training ``jobs``, ``evaluations``, ``publishing``, ``settings``."""

    workspace: Path
    roots: list[Path]
    runs: Runs
    jobs: JobManager
    evaluations: EvaluationJobs
    publishing: PublishJobs
    settings: StudioSettings

    @classmethod
    def open(cls, workspace: Path, *, roots: list[Path], runs: Runs, max_jobs: int = 1) -> Studio:
        """The managers of ``workspace``: training jobs and evaluations share ``max_jobs`` slots (and one lock),
        training jobs get the stored LLM key in their environment."""
        settings = StudioSettings(workspace)
        jobs = JobManager(workspace, max_running=max_jobs, environment=settings.child_environment)
        evaluations = EvaluationJobs(workspace, max_running=max_jobs, lock=jobs._lock)
        jobs.peers.append(evaluations)
        evaluations.peers.append(jobs)
        return cls(workspace, roots, runs, jobs, evaluations, PublishJobs(workspace), settings)

    def file(self, given: str, what: str) -> Path:
        """The file ``given`` names under the allowed roots: 403 outside them, 400 when there is none."""
        with http_errors():
            found = under_roots(given, self.roots, what, "file")
            if found is None:
                raise JobError(f"{what} file {given!r} does not exist")
            return found

    def training(self) -> dict[str, str]:
        """Run name -> id of the training job that has it queued or running (its folder is in use)."""
        return {job["run"]: job["id"] for job in self.jobs.list() if job["status"] in ("queued", "running")}

    def evaluating(self) -> dict[str, str]:
        """Evaluation folder name -> id of the evaluation job that has it queued or running."""
        return {job["run"]: job["id"] for job in self.evaluations.list() if job["status"] in ("queued", "running")}


@contextmanager
def http_errors() -> Iterator[None]:
    """A refused request as its HTTP answer: a JobError with its status, any other SparsefitError as a 400."""
    try:
        yield
    except JobError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except SparsefitError as exc:
        raise HTTPException(400, str(exc)) from None


def not_found(kind: str, key: str) -> HTTPException:
    return HTTPException(404, f"no {kind} {key!r}")
