"""Publish a finished run's model: push it to a model hub, or write it as a ``.tar.gz`` archive.

Why one module: what a published model *is* is decided once here and both ways ship exactly that: every
file of the run's ``model/`` (a sentence-transformers SparseEncoder folder) plus the run's model card as
``README.md`` at the top (it replaces the generic card sentence-transformers writes into ``model/``), with
the hub's metadata block added (license, library, tags, base model). The hub is reached through
``huggingface_hub`` (create the repo, the branch, then one commit; imported only here, so the CLI starts
fast), and its errors become one-line :class:`~sparsefit.errors.SparsefitError` that never show the token.

Example:
    >>> check_repo_id("acme/catalog-splade")
    'acme/catalog-splade'
    >>> publish("runs/demo", "acme/catalog-splade", private=True)  # doctest: +SKIP
    'https://huggingface.co/acme/catalog-splade/commit/4f1c...'
    >>> write_archive("runs/demo", "demo.tar.gz")  # doctest: +SKIP
    PosixPath('demo.tar.gz')
"""

from __future__ import annotations

import io
import os
import re
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sparsefit.errors import SparsefitError
from sparsefit.files import replace_file
from sparsefit.run import RunFolder, exported

__all__ = ["check_hub_target", "check_repo_id", "hub_card", "publish", "published_files", "total_size", "write_archive"]

# The hub's rule for each side of ORG/NAME: letters, digits, "-", "_", "."; at most 96 characters; neither
# starting nor ending with "-" or "."; no "--" or ".." (checked apart); not ending with ".git".
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"{_PART}/{_PART}")
_LICENSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")
# The licenses of sparsefit's offline base models (see sparsefit.models.aliases, not imported: it loads torch).
_BASE_LICENSES = {"splade-tiny": "apache-2.0", "minilm-l6": "apache-2.0"}
_SKIPPED_PARTS = {".git", ".cache"}  # never published (what huggingface_hub's upload_folder skips too)
TOKEN_HINT = "set HF_TOKEN to a write token of the hub (on huggingface.co: Settings > Access Tokens, role 'write')"


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a hub repository id ``ORG/NAME``; a clear error with an example otherwise."""
    if (not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id
            or repo_id.endswith(".git")):
        raise SparsefitError(f"the repository id {repo_id!r} is not ORG/NAME",
                             hint="write e.g. --repo acme/catalog-splade (letters, digits, '-', '_' and '.', "
                                  "at most 96 on each side of the '/')")
    return repo_id


def _finished(run: str | Path) -> RunFolder:
    """The run folder of a run that has exported its model and written its card; a clear error otherwise."""
    folder = Path(run).expanduser()
    if not folder.is_dir():
        raise SparsefitError("run folder not found", file=folder, hint="pass a run folder written by `sparsefit train`")
    found = RunFolder(folder)
    if not any(f.is_file() for f in (found.state_file, found.config, found.sources)):
        raise SparsefitError("not a training run folder (no state.json, config.yaml or run.json)", file=folder,
                             hint="pass a run folder written by `sparsefit train`")
    if not exported(folder):
        raise SparsefitError("the run has not finished exporting its model", file=folder,
                             hint=f"wait for the run to finish, or continue it with `sparsefit train --resume {folder}`")
    if not found.model.is_dir():
        raise SparsefitError("the run's exported model/ folder is missing", file=folder,
                             hint=f"export it again: `sparsefit train --resume {folder}`")
    if not found.card.is_file():
        raise SparsefitError("the run has no model card (README.md)", file=found.card,
                             hint=f"restore it, or delete model/ and export again with `sparsefit train --resume {folder}`")
    return found


def _base_model(run: RunFolder) -> str | None:
    """The run's ``base_model`` setting (None when config.yaml is missing or unreadable: the card then omits it)."""
    import yaml

    try:
        settings = yaml.safe_load(run.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    base = settings.get("base_model") if isinstance(settings, dict) else None
    return base if isinstance(base, str) and base else None


def hub_card(run: str | Path | RunFolder, license: str | None = None) -> str:
    """The run's model card with the hub's metadata block on top (a card that has one already is kept as is).

    ``license`` is a hub license id (``apache-2.0``, ``mit``, ``other``, ...); by default the base model's for
    sparsefit's built-in base models (both Apache-2.0), else ``other``. ``base_model`` is named when the run's
    base model is a hub id (not an alias or a local folder).
    """
    found = _finished(run) if not isinstance(run, RunFolder) else run
    card = found.card.read_text(encoding="utf-8")
    if card.startswith("---\n"):
        return card
    base = _base_model(found)
    if license is None:
        license = _BASE_LICENSES.get(base or "", "other")
    if not _LICENSE.fullmatch(license):
        raise SparsefitError(f"the license {license!r} is not a license id",
                             hint="pass a hub license id such as apache-2.0, mit, cc-by-4.0 or other")
    meta = [f"license: {license}", "library_name: sentence-transformers", "pipeline_tag: feature-extraction",
            "tags:", "- sparsefit", "- sentence-transformers", "- sparse-encoder", "- splade"]
    if base and _REPO_ID.fullmatch(base) and not Path(base).expanduser().exists():
        meta.append(f"base_model: {base}")
    return "---\n" + "\n".join(meta) + "\n---\n\n" + card


def published_files(run: str | Path, *, license: str | None = None) -> list[tuple[str, Path | bytes]]:
    """What is published, in order: (path in the repo, the file or the bytes): every file of ``model/`` but its
    README.md, then README.md, the card of :func:`hub_card`. A run that has not finished is an error."""
    found = _finished(run)
    files: list[tuple[str, Path | bytes]] = []
    for path in sorted(found.model.rglob("*"), key=lambda p: p.relative_to(found.model).as_posix()):
        name = path.relative_to(found.model).as_posix()
        if path.is_file() and name != "README.md" and not _SKIPPED_PARTS & set(path.relative_to(found.model).parts):
            files.append((name, path))
    files.append(("README.md", hub_card(found, license).encode("utf-8")))
    return files


def total_size(files: list[tuple[str, Path | bytes]]) -> int:
    """The bytes of :func:`published_files`."""
    return sum(len(source) if isinstance(source, bytes) else source.stat().st_size for _, source in files)


def check_hub_target(repo_id: str, *, revision: str | None = None, endpoint: str | None = None,
                     token: str | None = None) -> str:
    """Check what :func:`publish` is given before anything is sent (or an archive written beside it): the
    repository id, the branch name, the endpoint's form, and that there is a token (``token``, else
    ``HF_TOKEN``), which it returns."""
    check_repo_id(repo_id)
    if revision is not None and (not revision.strip() or revision.startswith("refs/")
                                 or any(c.isspace() or ord(c) < 32 for c in revision)):
        raise SparsefitError(f"the revision {revision!r} is not a branch name",
                             hint="pass a branch name such as v2 or experiments/round-2 (created from main if missing)")
    if endpoint is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", endpoint):
        raise SparsefitError(f"the endpoint {endpoint!r} is not an http(s) URL",
                             hint="write e.g. --endpoint https://huggingface.co")
    token = (token if token is not None else os.environ.get("HF_TOKEN", "")).strip()
    if not token:
        raise SparsefitError("no token to publish with: HF_TOKEN is not set", hint=TOKEN_HINT)
    return token


def publish(
    run: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    license: str | None = None,
) -> str:
    """Push the run's model and card (:func:`published_files`) to ``repo_id`` in one commit; the commit's URL.

    The repository is created (a model repo, private when ``private``) if missing; ``private`` refuses an
    existing public one rather than publish there. ``revision`` is the branch to commit to (created from
    ``main`` if missing). ``token`` defaults to ``HF_TOKEN``; ``endpoint`` to ``HF_ENDPOINT``, else
    https://huggingface.co. Files unchanged on the hub are not sent again (a republish with nothing new
    makes no commit and gives the URL of the branch's last commit).
    """
    token = check_hub_target(repo_id, revision=revision, endpoint=endpoint, token=token)
    files = published_files(run, license=license)

    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub import errors as hub_errors

    unparsable_url = getattr(hub_errors, "HfUriError", _NeverRaised)

    api = HfApi(endpoint=endpoint.rstrip("/") if endpoint else None, token=token)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source if isinstance(source, bytes) else str(source))
                  for name, source in files]
    message = commit_message or f"sparsefit publish: the model of run {Path(run).resolve().name}"
    with _hub_errors(api.endpoint, repo_id, revision, token):
        try:
            api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        except unparsable_url:
            # huggingface_hub 2.4: when the hub answers 401/403 for a repo that exists, create_repo(exist_ok=True)
            # builds the repo's URL without endpoint= and cannot parse one off huggingface.co (HfUriError). The
            # repo exists; the commit below says whether the token may write to it.
            pass
        if private and not api.repo_info(repo_id, repo_type="model").private:
            raise SparsefitError(f"the repository {repo_id} exists and is public: --private does not change that",
                                 hint="make it private on the hub first, or publish to a new repository")
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=message, revision=revision, repo_type="model")
    return info.commit_url


class _NeverRaised(Exception):
    """Stands for an exception type that the installed huggingface_hub does not have."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a hub that cannot be reached, for whichever HTTP client huggingface_hub uses."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "TransportError", None), type):
            found.append(module.TransportError)
    requests = sys.modules.get("requests")
    if requests is not None:
        found.append(requests.exceptions.ConnectionError)
    return tuple(found)


def _scrub(text: str, token: str) -> str:
    """``text`` without the token (should a server ever echo it), on one line."""
    return " ".join(text.replace(token, "***").split()) if token else " ".join(text.split())


@contextmanager
def _hub_errors(endpoint: str, repo_id: str, revision: str | None, token: str) -> Iterator[None]:
    """Turn huggingface_hub's errors into one-line SparsefitErrors with a fix; none of them shows the token."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RevisionNotFoundError,
    )

    try:
        yield
    except OfflineModeIsEnabled:
        raise SparsefitError(f"cannot publish to {endpoint}: the hub's offline mode is on (HF_HUB_OFFLINE)",
                             hint="unset HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE for this command") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if getattr(exc, "response", None) is not None else None
        said = _scrub(exc.server_message or "", token)
        detail = f"HTTP {status}" + (f": {said}" if said else "")
        if status in (401, 403):
            raise SparsefitError(f"the hub at {endpoint} refused the token ({detail})",
                                 hint=f"{TOKEN_HINT}, allowed to create and write {repo_id}") from None
        if isinstance(exc, RevisionNotFoundError):
            raise SparsefitError(f"the revision {revision!r} was not found in {repo_id} ({detail})",
                                 hint="pass a branch name with --revision (it is created from main if missing)") from None
        if status == 404:
            raise SparsefitError(f"the repository {repo_id} was not found at {endpoint} ({detail})",
                                 hint=f"check --repo, and that the token's account may create repositories in "
                                      f"{repo_id.split('/')[0]}") from None
        raise SparsefitError(f"the hub at {endpoint} failed to take {repo_id} ({detail})",
                             hint="try again later; the files already on the hub are kept") from None
    except ValueError as exc:
        if "metadata in README.md" not in str(exc):
            raise
        raise SparsefitError(f"the hub refused the model card's metadata ({_scrub(str(exc), token)})",
                             hint="fix the metadata block at the top of the run's README.md, or pass another --license") from None
    except _transport_errors() as exc:
        reason = _scrub(str(exc), token) or type(exc).__name__
        raise SparsefitError(f"cannot reach {endpoint} ({reason})",
                             hint="check the network and the hub's URL (--endpoint or HF_ENDPOINT)") from None


def write_archive(run: str | Path, target: str | Path, *, license: str | None = None) -> Path:
    """Write :func:`published_files` as a ``.tar.gz`` under one top folder named after the run; ``target``.

    The archive is written to a temporary file beside ``target`` and renamed onto it, so ``target`` is the old
    file or the complete new one, never a partial one. Its folder must exist.
    """
    target = Path(target).expanduser()
    if not target.name.endswith(".tar.gz") or target.name == ".tar.gz":
        raise SparsefitError("the archive must be a .tar.gz file", file=target,
                             hint="name it e.g. --to catalog-splade.tar.gz")
    files = published_files(run, license=license)
    if not target.parent.is_dir():
        raise SparsefitError("the archive's folder does not exist", file=target.parent,
                             hint="create it first, or pass --to a path in an existing folder")
    if target.is_dir():
        raise SparsefitError("the archive's path is a folder", file=target, hint="pass --to a file name ending in .tar.gz")
    found = RunFolder(Path(run).expanduser())
    top = found.path.resolve().name
    card_time = int(found.card.stat().st_mtime)

    def write(temporary: Path) -> None:
        with tarfile.open(temporary, "w:gz", compresslevel=6) as archive:
            folders = {top} | {f"{top}/{parent}" for name, _ in files
                               for parent in map(str, Path(name).parents) if parent != "."}
            for folder in sorted(folders):
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, card_time
                archive.addfile(info)
            for name, source in files:
                if isinstance(source, bytes):
                    info = tarfile.TarInfo(f"{top}/{name}")
                    info.size, info.mode, info.mtime = len(source), 0o644, card_time
                    archive.addfile(info, io.BytesIO(source))
                    continue
                with source.open("rb") as stream:  # through the open file: a symlink is archived as its content
                    info = archive.gettarinfo(arcname=f"{top}/{name}", fileobj=stream)
                    info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
                    archive.addfile(info, stream)

    try:
        replace_file(target, write, suffix=".tar.gz")
    except SparsefitError as err:  # replace_file's hint speaks of --output
        raise SparsefitError(err.message, file=target,
                             hint="pass --to a path in a folder you can write to, and check free disk space") from None
    return target
