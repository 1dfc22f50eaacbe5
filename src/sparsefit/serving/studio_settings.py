"""The studio's Settings: defaults for new training runs, the Qdrant server the Collections page lists, the LLM
that writes training queries when a run has no judgments, and the keys of both, kept in the workspace.

Why it is shaped so:

* Two files in ``<workspace>/.studio/``: ``settings.json`` (plain values) and ``secrets.json`` (the keys), each
  written atomically (a temporary file of mode 0600 renamed into place). The studio never reads that folder as
  data (:data:`~sparsefit.serving.job_options.PRIVATE_FOLDER`), so a key cannot leak through a catalog's error.
* Keys are write-only: :meth:`StudioSettings.public` says only whether each is set. An empty field keeps the
  stored key, ``clear`` removes it. A training job gets the LLM key in its environment
  (``SPARSEFIT_LLM_API_KEY``), never on its command line nor in its job file.
* Every value is checked as a job's options are (the same :func:`~sparsefit.serving.job_options.parse_options`),
  so a saved default can never make a job's command line invalid.

Example:
    >>> store = StudioSettings(Path(tempfile.mkdtemp()))                       # doctest: +SKIP
    >>> store.update(SettingsUpdate(llm_api_key="sk-123"), roots=[])["llm_api_key"]   # doctest: +SKIP
    {'set': True}
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sparsefit.errors import SparsefitError
from sparsefit.files import make_folder, read_json, write_json
from sparsefit.serving.job_options import (
    LLM_MODEL,
    OPTIONS,
    PRIVATE_FOLDER,
    JobError,
    check_base_model,
    check_url,
    parse_options,
)

SECRETS = ("llm_api_key", "qdrant_api_key")
KEY_OF_URL = {"qdrant_url": "qdrant_api_key", "llm_url": "llm_api_key"}  # changing the URL forgets its stored key
LLM_OPTIONS = ("llm_url", "llm_model")  # training options that the Settings page sets in its LLM section
TRAINING = tuple(key for key in OPTIONS if key not in LLM_OPTIONS)
LLM_KEY_VARIABLE = "SPARSEFIT_LLM_API_KEY"  # what `sparsefit train` (sparsefit.queries.llm) reads the key from
QDRANT_KEY_VARIABLE = "SPARSEFIT_QDRANT_API_KEY"


class SettingsUpdate(BaseModel):
    """A change of the studio's settings. Only the fields given change: ``training`` replaces the stored training
    defaults, a URL or model given as "" or null is unset. A key given as "" or null is kept (the page shows no
    key, so an untouched field must not erase it); ``clear`` names the keys to remove."""

    model_config = ConfigDict(extra="forbid")

    training: dict[str, Any] | None = Field(None, description="defaults for new runs: the Train form's options")
    qdrant_url: str | None = Field(None, max_length=2000, description="the Qdrant server the Collections page lists")
    llm_url: str | None = Field(None, max_length=2000, description="OpenAI-compatible endpoint for generated queries")
    llm_model: str | None = Field(None, max_length=200, description="the chat model that writes them")
    llm_api_key: str | None = Field(None, max_length=4096, description="write-only; empty keeps the stored key")
    qdrant_api_key: str | None = Field(None, max_length=4096, description="write-only; empty keeps the stored key")
    clear: list[Literal["llm_api_key", "qdrant_api_key"]] = Field(default_factory=list, max_length=2,
                                                                  description="keys to remove")


class StudioSettings:
    """The workspace's settings and keys; thread-safe."""

    def __init__(self, workspace: Path) -> None:
        self.folder = workspace / PRIVATE_FOLDER
        self.file = self.folder / "settings.json"
        self.secrets_file = self.folder / "secrets.json"
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------
    def _read(self, file: Path) -> tuple[dict[str, Any], str | None]:
        """A stored object and the problem with it (a damaged or edited file reads as empty, and says so)."""
        if not file.is_file():
            return {}, None
        try:
            data = read_json(file)
        except SparsefitError:
            return {}, f"{PRIVATE_FOLDER}/{file.name} is damaged; saving the settings replaces it"
        if not isinstance(data, dict):
            return {}, f"{PRIVATE_FOLDER}/{file.name} is not a JSON object; saving the settings replaces it"
        return data, None

    def stored(self) -> tuple[dict[str, Any], str | None]:
        """The plain settings, each checked again (the file may have been edited), and what was wrong with them."""
        data, problem = self._read(self.file)
        out: dict[str, Any] = {}
        try:
            out["training"] = {k: v for k, v in parse_options(data.get("training") or {}).items() if k in TRAINING}
            for key in ("qdrant_url", *LLM_OPTIONS):
                if data.get(key) is not None:
                    out[key] = _checked(key, data[key])
        except (JobError, ValueError) as exc:
            return {"training": {}}, f"{PRIVATE_FOLDER}/{self.file.name} holds a bad value ({exc}); saving the settings replaces it"
        return out, problem

    def secret(self, name: str) -> str | None:
        value = self._read(self.secrets_file)[0].get(name)
        return value if isinstance(value, str) and value else None

    def public(self) -> dict[str, Any]:
        """What the page shows: the values, and for each key only whether it is set. ``defaults``: what an unset
        value stands for (the sparsefit settings, with SPARSEFIT_* and --config applied)."""
        from sparsefit.config import load_settings

        stored, problem = self.stored()
        settings = load_settings()
        return {"training": stored.get("training", {}), **{k: stored.get(k) for k in ("qdrant_url", *LLM_OPTIONS)},
                **{name: {"set": self.secret(name) is not None} for name in SECRETS},
                "defaults": {"training": {k: getattr(settings, k) for k in TRAINING},
                             **{k: getattr(settings, k) for k in ("qdrant_url", *LLM_OPTIONS)}},
                "problem": problem}

    def training_defaults(self, *, with_llm: bool = True) -> dict[str, Any]:
        """The options a new training job starts from (the request's own options win): the stored defaults and,
        ``with_llm`` (a run without judgments: the LLM writes its training queries), the LLM endpoint."""
        stored, _ = self.stored()
        return {**stored.get("training", {}), **{k: stored[k] for k in LLM_OPTIONS if with_llm and stored.get(k)}}

    def child_environment(self) -> dict[str, str]:
        """Variables for a training job's process: the LLM key, when one is stored."""
        key = self.secret("llm_api_key")
        return {LLM_KEY_VARIABLE: key} if key else {}

    def qdrant(self) -> tuple[str | None, str | None]:
        """The Qdrant server to list (its URL, else SPARSEFIT_QDRANT_URL or --config's) and its API key (stored,
        else SPARSEFIT_QDRANT_API_KEY)."""
        from sparsefit.config import load_settings

        stored, configured = self.stored()[0].get("qdrant_url"), load_settings().qdrant_url
        url = stored or configured
        environment_key = os.environ.get(QDRANT_KEY_VARIABLE) if url == configured else None  # the environment's key: its own server only
        return url, self.secret("qdrant_api_key") or environment_key or None

    # -- writing -------------------------------------------------------------------------------
    def update(self, change: SettingsUpdate, roots: Sequence[Path]) -> dict[str, Any]:
        """Apply ``change`` (checked first: nothing is written when a value is refused) and save; the public view.
        A :class:`JobError` (400, 403 for a base model folder outside ``roots``) names the refused value."""
        given = change.model_fields_set
        with self._lock:
            stored, _ = self.stored()
            secrets = {k: v for k, v in self._read(self.secrets_file)[0].items() if k in SECRETS and isinstance(v, str)}
            if "training" in given:
                training = change.training or {}
                for key in LLM_OPTIONS:
                    if training.get(key) not in (None, ""):
                        raise JobError(f"{key} is set in the LLM section, not among the training defaults",
                                       hint=f'send it as "{key}" beside "training"')
                checked = parse_options({k: v for k, v in training.items() if k not in LLM_OPTIONS})
                if "base_model" in checked:
                    checked["base_model"] = check_base_model(checked["base_model"], roots)
                stored["training"] = checked
            for key in ("qdrant_url", *LLM_OPTIONS):
                if key in given:
                    value = (getattr(change, key) or "").strip()
                    try:
                        checked_value = _checked(key, value) if value else None
                    except ValueError as exc:
                        raise JobError(str(exc), hint="leave it empty to unset it") from None
                    bound = KEY_OF_URL.get(key)
                    if bound and checked_value != stored.get(key) and not (getattr(change, bound) or "").strip():
                        secrets.pop(bound, None)  # a stored key goes only to the URL it was saved with
                    stored[key] = checked_value
            for name in SECRETS:
                value = (getattr(change, name) or "").strip()
                if name in change.clear and value:
                    raise JobError(f"{name} is both given and cleared", hint="send one or the other")
                if name in change.clear:
                    secrets.pop(name, None)
                elif value:
                    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
                        raise JobError(f"{name} holds spaces or control characters", hint="paste the key alone")
                    secrets[name] = value
            make_folder(self.folder)
            write_json(self.file, {k: v for k, v in stored.items() if v not in (None, {})} | {"training": stored.get("training", {})})
            write_json(self.secrets_file, secrets)
        return self.public()


def _checked(key: str, value: Any) -> str:
    """A stored URL or model name, checked (a ValueError naming it otherwise)."""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text")
    if key.endswith("_url"):
        return check_url(value, key)
    if not LLM_MODEL.fullmatch(value):
        raise ValueError(f"{key} {value[:60]!r} is not a model name (letters, digits and . _ : / @ + -)")
    return value
