"""What a studio job may ask for, checked before any process exists: typed, bounded training options,
and paths (catalog, judgments, base model folder) only under the allowed roots.

Example:
    >>> parse_options({"rounds": "2", "seed": ""})
    {'rounds': 2}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sparsefit.errors import SparsefitError

# Training options the studio may set, with the CLI flag each one becomes.
OPTIONS = {"rounds": "--rounds", "base_model": "--base-model", "epochs": "--epochs", "mining_epochs": "--mining-epochs",
           "negatives": "--negatives", "train_batch_size": "--train-batch-size",
           "queries_per_product": "--queries-per-product", "query_products": "--query-products", "seed": "--seed",
           "search_posting_cap": "--search-posting-cap", "learning_rate": "--learning-rate",
           "architecture": "--architecture", "llm_url": "--llm-url", "llm_model": "--llm-model"}
# The workspace's private folder (studio settings and secrets): never a catalog, judgments or model, whatever the roots.
PRIVATE_FOLDER = ".studio"
# A chat model's name as OpenAI-compatible servers spell them (gpt-4o-mini, llama3.1:8b, org/model@rev); never "-..."
LLM_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


def check_url(value: str, what: str) -> str:
    """``value`` if it is an http(s) URL with a host and no whitespace (it becomes a command-line value and a
    request target); a ValueError naming ``what`` otherwise.

    Example:
        >>> check_url("http://localhost:11434/v1", "llm_url")
        'http://localhost:11434/v1'
    """
    problem = not isinstance(value, str) or len(value) > 2000 or any(c.isspace() or ord(c) < 32 for c in value)
    if not problem:
        try:
            parts = urlsplit(value)
            problem = parts.scheme not in ("http", "https") or not parts.hostname or (parts.port is not None and parts.port < 1)
        except ValueError:  # a port that is not a number, a malformed IPv6 address
            problem = True
    if problem:
        raise ValueError(f"{what} must be an http:// or https:// URL with a host, e.g. http://localhost:11434/v1")
    return value


class JobError(SparsefitError):
    """A refused job request, with the HTTP status that says why: 400 bad input, 403 outside the allowed roots,
    409 the run name is taken."""

    def __init__(self, message: str, *, status: int = 400, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class JobOptions(BaseModel):
    """The training options a studio job may set, typed and bounded so that a bad value is refused before any
    process starts (``seed: "1 --rounds 5"`` never reaches the command line). Every field is optional: unset
    means the settings' default. ``base_model`` is checked against the allowed roots by :func:`check_base_model`."""

    model_config = ConfigDict(extra="forbid")

    rounds: int | None = Field(None, ge=1, le=20)
    base_model: str | None = Field(None, min_length=1, max_length=1000)
    epochs: float | None = Field(None, gt=0, le=100)
    mining_epochs: float | None = Field(None, gt=0, le=100)
    negatives: int | None = Field(None, ge=1, le=32)
    train_batch_size: int | None = Field(None, ge=2, le=1024)
    queries_per_product: int | None = Field(None, ge=1, le=20)
    query_products: int | None = Field(None, ge=1, le=1_000_000_000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)  # numpy's seed range
    search_posting_cap: int | None = Field(None, ge=1, le=1_000_000_000)
    learning_rate: float | None = Field(None, gt=0, le=1)
    architecture: Literal["splade", "inference-free"] | None = None
    llm_url: str | None = Field(None, max_length=2000)  # without judgments: the OpenAI-compatible endpoint
    llm_model: str | None = Field(None, max_length=200)  # the chat model that writes the training queries

    @field_validator("llm_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value, "an LLM URL")

    @field_validator("llm_model")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not LLM_MODEL.fullmatch(value):
            raise ValueError("a model name is letters, digits and . _ : / @ + -, starting with a letter or digit")
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any) -> Any:
        """The page leaves a field empty as "" or null (Number("x") is NaN, which JSON sends as null): the default.
        true/false is refused rather than read as 1/0."""
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str):
            value = value.strip()
        if isinstance(value, bool):
            raise ValueError("true/false is not a valid value")
        return value


def parse_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``options`` checked by :class:`JobOptions`, unset ones dropped; a :class:`JobError` (400) naming the option."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise JobError("training options must be a JSON object", hint="send e.g. {\"rounds\": 2}")
    unknown = sorted(str(k) for k in options if k not in OPTIONS)
    if unknown:
        raise JobError(f"unknown training option {unknown[0]!r}", hint="use one of " + ", ".join(sorted(OPTIONS)))
    try:
        checked = JobOptions.model_validate(options)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"]) or "options"
            problems.append(f"training option {key!r}: {error['msg'].removeprefix('Value error, ')} "
                            f"(got {_short(error.get('input'))})")
        raise JobError("; ".join(problems), hint="leave it empty for the default") from None
    return checked.model_dump(exclude_none=True)


def under_roots(given: str, roots: Sequence[Path], what: str, want: str) -> Path | None:
    """The first existing ``want`` ("file" or "dir") that ``given`` names under ``roots`` (a relative path is
    looked up under each root in turn; symlinks are followed before the check), else None when it names
    nothing there. A :class:`JobError` 403 when every reading of it lies outside the roots, 400 when it
    cannot be a path at all (a NUL byte, an unknown ``~user``, a name too long, a symlink loop). Errors
    show ``given``, never a server path.
    """
    roots = [Path(r).resolve() for r in roots]
    try:
        path = Path(given).expanduser()
        candidates = [path] if path.is_absolute() else [root / path for root in roots]
        inside = [c.resolve() for c in candidates]
        inside = [r for r in inside if any(r.is_relative_to(root) for root in roots)]
        if any(r.is_relative_to(root / PRIVATE_FOLDER) for r in inside for root in roots):
            raise JobError(f"{what} path {given!r} is in the studio's private folder ({PRIVATE_FOLDER}/: its settings "
                           "and keys), which it never reads as data", status=403, hint="pick a data file or model folder")
        if not inside:
            raise JobError(f"{what} path {given!r} is outside the folders the studio may read (see GET /api/files "
                           "for them)", status=403, hint="start the studio with --allow-root to add one")
        return next((r for r in inside if (r.is_file() if want == "file" else r.is_dir())), None)
    except (ValueError, OSError, RuntimeError):
        raise JobError(f"{what} path {given[:200]!r} is not a valid path") from None


def check_base_model(value: str, roots: Sequence[Path]) -> str:
    """``value`` if it is an offline alias, else the resolved folder it names under one of ``roots``.

    Why: the studio must not load weights from anywhere on the machine, nor download a hub id.
    """
    from sparsefit.models import ALIASES

    if value in ALIASES:
        return value
    folder = under_roots(value, roots, "base_model", "dir")
    if folder is not None:
        return str(folder)
    if under_roots(value, roots, "base_model", "file") is not None:
        raise JobError(f"base_model {value!r} is a file, not a model folder",
                       hint="give the folder that holds config.json and the weights")
    raise JobError(f"base_model {value!r} is neither an offline alias ({', '.join(ALIASES)}) nor a model folder "
                   "under the allowed roots; the studio does not download hub models",
                   hint="pick an alias, or save the model into a folder under an allowed root and give that")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
