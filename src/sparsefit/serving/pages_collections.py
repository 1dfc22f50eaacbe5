"""The studio's Collections page: every index of the workspace's runs and evaluations (Qdrant Edge folders) and,
when Settings name one, of a Qdrant server, with deletion behind a typed confirmation (see ``indexes.py``).

Endpoints: ``GET /api/collections`` (``{"edge": [...], "server": {"url", "collections", "error"}}``),
``DELETE /api/collections/edge/{name}`` and ``DELETE /api/collections/server/{name}``, each with the body
``{"confirm": "<the name>"}`` (400 without it, 404 none such, 409 in use by a running job).

Example:
    >>> app.include_router(router(studio))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from sparsefit.serving import indexes
from sparsefit.serving.studio import Studio


class DeleteRequest(BaseModel):
    confirm: str = Field("", max_length=1000, description="the collection's name, typed again")


def router(studio: Studio) -> APIRouter:
    api = APIRouter()

    @api.get("/api/collections")
    def list_collections() -> dict[str, Any]:
        """Points, vector config, size on disk and owning run of every index (the server's size is not reported)."""
        jobs = indexes.busy(studio)
        return {"edge": [indexes.describe_edge(studio, found, jobs) for found in indexes.edge_indexes(studio)],
                "server": indexes.server_collections(studio)}

    @api.delete("/api/collections/edge/{name:path}")
    def delete_edge(name: str, request: DeleteRequest | None = None) -> dict[str, Any]:
        """Delete a Qdrant Edge index of the workspace (its folder)."""
        return indexes.delete_edge(studio, name, request.confirm if request else "")

    @api.delete("/api/collections/server/{name}")
    def delete_server(name: str, request: DeleteRequest | None = None) -> dict[str, Any]:
        """Delete a collection of the Qdrant server that Settings name."""
        return indexes.delete_server(studio, name, request.confirm if request else "")

    return api
