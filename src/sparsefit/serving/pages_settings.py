"""The studio's Settings page and the Train form's defaults.

Endpoints: ``GET /api/settings`` (the values; each key only as ``{"set": true|false}``), ``PUT /api/settings``
(change what is given; 400 a bad value, naming it, and nothing saved; 403 a base model folder outside the roots),
``GET /api/defaults`` (what each empty Train field stands for: the saved defaults over sparsefit's settings).

Example:
    >>> app.include_router(router(studio))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sparsefit.serving.studio import Studio, http_errors
from sparsefit.serving.studio_settings import SettingsUpdate


def router(studio: Studio) -> APIRouter:
    api = APIRouter()

    @api.get("/api/settings")
    def get_settings() -> dict[str, Any]:
        """Defaults for new runs, the Qdrant server, the LLM endpoint; for each key only whether it is set."""
        return studio.settings.public()

    @api.put("/api/settings")
    def put_settings(change: SettingsUpdate) -> dict[str, Any]:
        """Save the fields given (atomically). An empty key field keeps the stored key; "clear" removes it."""
        with http_errors():
            return studio.settings.update(change, studio.roots)

    @api.get("/api/defaults")
    def defaults() -> dict[str, Any]:
        """The training settings a job gets when the form leaves them empty: the studio's saved defaults, else
        sparsefit's Settings (with SPARSEFIT_* and --config applied)."""
        from sparsefit.config import load_settings
        from sparsefit.serving.job_options import OPTIONS

        settings = load_settings()
        return {"training": {key: getattr(settings, key) for key in OPTIONS} | studio.settings.training_defaults()}

    return api
