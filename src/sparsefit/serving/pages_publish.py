"""The studio's Publish page: push a finished run's model and card to a model hub (``sparsefit publish --repo``),
or write it as a .tar.gz to download (``--to``), in a background job.

The hub token is used for that one call: it is checked here, handed to the job in memory and to its process as
``HF_TOKEN``, and never written (job file, log, settings) nor sent back. Without one, the studio's own
``HF_TOKEN`` is used when it was started with it.

Endpoints: ``POST /api/publish`` (start; 400 bad input, 404 unknown run, 409 a run that has not finished),
``GET /api/publish`` (all, newest first), ``GET /api/publish/{id}`` (state, log, commit URL), ``POST
/api/publish/{id}/cancel``, ``GET /api/publish/{id}/archive`` (the .tar.gz, once written).

Example:
    >>> app.include_router(router(studio))   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from sparsefit.run import exported
from sparsefit.serving.studio import Studio, http_errors, not_found


class PublishRequest(BaseModel):
    run: str = Field(..., max_length=200, description="a finished run")
    repo: str | None = Field(None, max_length=200, description="the hub repository ORG/NAME (created if missing)")
    private: bool = Field(False, description="create the repository private (an existing public one is refused)")
    revision: str | None = Field(None, max_length=200, description="the branch to commit to (default main)")
    endpoint: str | None = Field(None, max_length=2000, description="the hub's URL (default HF_ENDPOINT, else huggingface.co)")
    license: str | None = Field(None, max_length=64, description="the card's license id (default: the base model's)")
    archive: bool = Field(False, description="also write the files as a .tar.gz to download")
    token: str | None = Field(None, max_length=4096, description="the hub token for this call: used, never stored or returned")


def router(studio: Studio) -> APIRouter:
    api = APIRouter()
    manager = studio.publishing

    def view(job: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in job.items() if k != "token_ref"}
        archive = manager.archive(job)
        out["archive_url"] = f"/api/publish/{job['id']}/archive" if archive else None
        out["archive_size"] = archive.stat().st_size if archive else None
        out["commit_url"] = manager.commit_url(job)
        if detail:
            out["log"] = manager.log(job["id"], 40)
        return out

    def job(job_id: str) -> dict[str, Any]:
        try:
            return manager.get(job_id)
        except KeyError:
            raise not_found("publish job", job_id) from None

    @api.post("/api/publish", status_code=201)
    def start_publish(request: PublishRequest) -> dict[str, Any]:
        """Publish a finished run to a hub and/or write its .tar.gz (`sparsefit publish` in a child process)."""
        import sparsefit.publish as publishing

        folder = studio.runs.folder(request.run)
        if not exported(folder):
            raise HTTPException(409, f"run {request.run!r} has not finished; publish it once it has exported its model")
        repo = (request.repo or "").strip() or None
        revision = (request.revision or "").strip() or None
        endpoint = (request.endpoint or "").strip().rstrip("/") or None
        license = (request.license or "").strip() or None
        token = (request.token or "").strip() or None
        if repo is None and not request.archive:
            raise HTTPException(400, "nothing to do: give a hub repository (ORG/NAME), ask for the .tar.gz, or both")
        if repo is None and (request.private or revision or endpoint or token):
            raise HTTPException(400, "private, revision, endpoint and token apply to a hub repository, which is not given")
        if endpoint is not None and token is None:  # the studio's own HF_TOKEN goes only to the hub it was started for
            raise HTTPException(400, "another hub endpoint needs its own token in the request",
                                )
        if repo is not None and token is None and not os.environ.get("HF_TOKEN", "").strip():
            raise HTTPException(400, "no hub token: give one (a write token; it is used for this call and never stored), "
                                     "or start the studio with HF_TOKEN set")
        with http_errors():
            if repo is not None:
                publishing.check_hub_target(repo, revision=revision, endpoint=endpoint, token=token)
            publishing.published_files(folder, license=license)  # a finished run with its card; the license's form
            return view(manager.start_publish(run=folder.name, folder=folder, repo=repo, private=request.private,
                                              revision=revision, endpoint=endpoint, license=license,
                                              archive=request.archive, token=token))

    @api.get("/api/publish")
    def list_publish() -> dict[str, Any]:
        return {"jobs": [view(j) for j in manager.list()]}

    @api.get("/api/publish/{job_id}")
    def publish_job(job_id: str) -> dict[str, Any]:
        return view(job(job_id), detail=True)

    @api.post("/api/publish/{job_id}/cancel")
    def cancel_publish(job_id: str) -> dict[str, Any]:
        job(job_id)
        return view(manager.cancel(job_id))

    @api.get("/api/publish/{job_id}/archive", response_model=None)
    def download_archive(job_id: str) -> FileResponse:
        """The job's .tar.gz, as a download."""
        found = job(job_id)
        archive = manager.archive(found)
        if archive is None:
            what = "asked for no archive" if not found.get("archive") else f"is {found['status']}" if found["status"] != "finished" \
                else "has lost its archive (deleted from the workspace's exports/)"
            raise HTTPException(404 if found["status"] == "finished" or not found.get("archive") else 409,
                                f"publish job {job_id} {what}")
        return FileResponse(archive, media_type="application/gzip", filename=Path(archive).name,
                            headers={"Cache-Control": "no-store"})

    return api
