"""The indexes the studio's Collections page lists and deletes: the Qdrant Edge folders inside the workspace's
runs and evaluations (and the served runs'), and the collections of a Qdrant server when one is set.

Why it is careful:

* An Edge folder is opened by one handle at a time, and a training job or an evaluation keeps its index open
  while it runs. So an index whose run or evaluation has a job queued or running is never opened here (its
  point count is left out, and deleting it is a 409); a run the Search page has open is counted through that
  open service; any other is opened briefly, one at a time, and its count is kept until its files change.
* Deleting takes the folder's lock first (Qdrant Edge refuses it while another process holds the folder), and
  only inside the workspace: a run served with ``--run`` lies outside it and is never deleted from here.
* A Qdrant server is asked with a short timeout; when it cannot be reached the page says so, and still lists
  the Edge folders. Its API key is never returned.

Example:
    >>> [found.name for found in edge_indexes(studio)]   # doctest: +SKIP
    ['runs/demo/index', 'evaluations/eval-1/indexes/splade-tiny']
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from sparsefit.errors import SparsefitError
from sparsefit.serving.studio import Studio

SKIPPED = {"model", "rounds", "average", "baselines", "segments", "wal"}  # folders that never hold an index
MAX_DEPTH = 3  # runs/x/index, evaluations/x/indexes/<model>
MAX_SERVER_COLLECTIONS = 500
SERVER_TIMEOUT_S = 5
_open_lock = threading.Lock()  # one Edge folder opened at a time by this module
_counts: dict[Path, tuple[tuple[int, int, int], int]] = {}  # folder -> (its files' signature, point count)


@dataclass(frozen=True)
class EdgeFolder:
    """A Qdrant Edge index found in a run or evaluation folder."""

    name: str  # its path under the workspace (runs/demo/index), or <run>/<path> for a served run outside it
    path: Path
    kind: str  # "run", "evaluation" or "served"
    owner: str  # the run's or evaluation's name


def _edge_folders(folder: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """The Qdrant Edge folders under ``folder`` (itself included), at most ``depth`` levels down."""
    from sparsefit.index.edge import is_edge_folder

    if is_edge_folder(folder):
        return [folder]
    if depth == 0:
        return []
    found: list[Path] = []
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    for child in children:
        if child.name not in SKIPPED and not child.name.startswith("."):
            found += _edge_folders(child, depth - 1)
    return found


def edge_indexes(studio: Studio) -> list[EdgeFolder]:
    """Every Edge index of the runs the studio knows and of its evaluations."""
    workspace = studio.workspace.resolve()
    out: list[EdgeFolder] = []
    owners = [("run", name, folder) for name, folder in studio.runs.folders().items()]
    evaluations = workspace / "evaluations"
    if evaluations.is_dir():
        owners += [("evaluation", f.name, f) for f in sorted(evaluations.iterdir()) if f.is_dir() and not f.name.startswith(".")]
    for kind, owner, folder in owners:
        inside = folder.resolve().is_relative_to(workspace)
        for path in _edge_folders(folder):
            name = path.resolve().relative_to(workspace).as_posix() if inside else f"{owner}/{path.relative_to(folder).as_posix()}"
            out.append(EdgeFolder(name, path, kind if inside else "served", owner))
    return out


def _walk(path: Path) -> tuple[int, tuple[int, int, int]]:
    """The folder's size on disk in bytes (the blocks its files take: Qdrant's memory-mapped files are sparse, their
    length far above it) and a signature of its files (count, length, latest change)."""
    size = files = length = latest = 0
    for here, _, names in os.walk(path):
        for name in names:
            try:
                stat = os.stat(os.path.join(here, name))
            except OSError:
                continue
            blocks = getattr(stat, "st_blocks", None)
            size += blocks * 512 if blocks is not None else stat.st_size
            files, length, latest = files + 1, length + stat.st_size, max(latest, stat.st_mtime_ns)
    return size, (files, length, latest)


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


Busy = tuple[dict[str, str], dict[str, str]]  # runs and evaluations with a job queued or running -> its id


def busy(studio: Studio) -> Busy:
    """The runs and evaluations whose folders a job uses now (asked once per listing: each question refreshes every job)."""
    return studio.training(), studio.evaluating()


def _user(found: EdgeFolder, jobs: Busy) -> str | None:
    """The job that has this index's run or evaluation queued or running (it is then in use), as words."""
    training, evaluating = jobs
    if found.kind == "run" and found.owner in training:
        return f"training job {training[found.owner]} of run {found.owner}"
    if found.kind == "evaluation" and found.owner in evaluating:
        return f"evaluation job {evaluating[found.owner]}"
    return None


def _count(studio: Studio, found: EdgeFolder, signature: tuple[int, int, int]) -> tuple[int | None, str | None]:
    """(points, why there is no count)."""
    from sparsefit.index.edge import EdgeIndex

    service = studio.runs.opened(found.owner) if found.kind != "evaluation" else None
    opened = getattr(service.index, "path", None) if service is not None else None  # a server index has none
    if opened is not None and Path(opened).resolve() == found.path.resolve():
        return service.index.count(), None
    cached = _counts.get(found.path)
    if cached is not None and cached[0] == signature:
        return cached[1], None
    with _open_lock:
        try:
            with EdgeIndex(found.path, create=False) as index:
                points = index.count()
        except SparsefitError as exc:
            return None, f"not counted: {exc.message}"
    _counts[found.path] = (signature, points)
    return points, None


def describe_edge(studio: Studio, found: EdgeFolder, jobs: Busy) -> dict[str, Any]:
    """Points, vector config (named sparse vectors and their modifier, dense vectors), size on disk, model, owner;
    ``jobs``: what :func:`busy` says."""
    config = _read(found.path / "edge_config.json")
    meta = _read(found.path / "sparsefit_meta.json")
    size, signature = _walk(found.path)
    user = _user(found, jobs)
    points, note = (None, f"in use by {user}: counted when it ends") if user else _count(studio, found, signature)
    sparse = config.get("sparse_vectors") or {}
    dense = config.get("vectors") or {}
    return {
        "name": found.name, "engine": "edge", "kind": found.kind, "owner": found.owner, "points": points, "note": note,
        "sparse_vectors": [{"name": n, "modifier": str((p or {}).get("modifier") or "none").lower()} for n, p in sorted(sparse.items())],
        "dense_vectors": [{"name": n, "size": (p or {}).get("size"), "distance": (p or {}).get("distance")} for n, p in sorted(dense.items())],
        "size_bytes": size, "model": meta.get("model_name"), "complete": bool(meta.get("complete")),
        "two_stage": bool(meta.get("two_stage")), "in_use": user, "deletable": found.kind != "served",
    }


def delete_edge(studio: Studio, name: str, confirm: str) -> dict[str, Any]:
    """Delete an Edge index of the workspace once ``confirm`` repeats its name: 400 otherwise, 403 a served run's,
    404 none such, 409 in use (a job, or another process holding the folder)."""
    from sparsefit.index.edge import EdgeIndex

    found = next((f for f in edge_indexes(studio) if f.name == name), None)
    if found is None:
        raise HTTPException(404, f"no index named {name!r}")
    if confirm != name:
        raise HTTPException(400, f"to delete the index {name!r}, send \"confirm\" with its name exactly")
    if found.kind == "served":
        raise HTTPException(403, f"the index {name!r} belongs to a run served from outside the workspace; the studio "
                                 "deletes only its own")
    if (user := _user(found, busy(studio))) is not None:
        raise HTTPException(409, f"the index {name!r} is in use by {user}; cancel it or wait for it to end")
    if found.kind == "run":
        studio.runs.forget(found.owner)  # the Search page's open service holds the folder: close it first
    with _open_lock:
        try:
            EdgeIndex(found.path, create=False).close()  # takes the folder's lock: refused while anyone holds it
        except SparsefitError as exc:
            raise HTTPException(409, f"the index {name!r} cannot be deleted now: {exc.message}") from None
        shutil.rmtree(found.path)
        _counts.pop(found.path, None)
    return {"deleted": name, "engine": "edge"}


# -- a Qdrant server ------------------------------------------------------------------------
def _client(url: str, api_key: str | None):
    import warnings

    from qdrant_client import QdrantClient

    with warnings.catch_warnings():  # "Api key is used with an insecure connection": the user's choice of URL
        warnings.simplefilter("ignore", UserWarning)
        return QdrantClient(url=url, api_key=api_key, timeout=SERVER_TIMEOUT_S, check_compatibility=False)


def _reason(exc: BaseException, api_key: str | None) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text.replace(api_key, "***") if api_key else text)[:300]


Owners = dict[tuple[str, bool], tuple[str, str]]


def _server_owners(studio: Studio, url: str) -> Owners:
    """(collection, whether it is a prefix) -> (kind, name) for the runs and evaluations whose settings put their
    indexes on ``url``: a run's is its collection, an evaluation's are ``<collection>-<model>``."""
    import yaml

    owners: Owners = {}
    folders = [("run", n, f) for n, f in studio.runs.folders().items()]
    evaluations = studio.workspace / "evaluations"
    if evaluations.is_dir():
        folders += [("evaluation", f.name, f) for f in sorted(evaluations.iterdir()) if f.is_dir()]
    for kind, name, folder in folders:
        try:
            config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(config, dict) and str(config.get("qdrant_url") or "").rstrip("/") == url.rstrip("/"):
            owners[(str(config.get("collection") or "catalog"), kind == "evaluation")] = (kind, name)
    return owners


def _owner_of(collection: str, owners: Owners) -> tuple[str, str] | None:
    for (name, prefix), owner in owners.items():
        if collection == name or (prefix and collection.startswith(f"{name}-")):
            return owner
    return None


def server_collections(studio: Studio) -> dict[str, Any]:
    """The configured server's collections (points, vector config, model, owner), or why they cannot be listed."""
    url, api_key = studio.settings.qdrant()
    if not url:
        return {"url": None, "collections": [], "error": None}
    out: dict[str, Any] = {"url": url, "collections": [], "error": None}
    try:
        client = _client(url, api_key)
        names = sorted(c.name for c in client.get_collections().collections)
        owners = _server_owners(studio, url)
        training = studio.training()
        for name in names[:MAX_SERVER_COLLECTIONS]:
            info = client.get_collection(name)
            params = info.config.params
            vectors = params.vectors if isinstance(params.vectors, dict) else ({"": params.vectors} if params.vectors else {})
            meta = (getattr(info.config, "metadata", None) or {}).get("sparsefit") or {}
            owner = _owner_of(name, owners)
            user = f"training job {training[owner[1]]} of run {owner[1]}" if owner and owner[0] == "run" and owner[1] in training else None
            out["collections"].append({
                "name": name, "engine": "server", "points": info.points_count, "status": str(getattr(info.status, "value", info.status)),
                "sparse_vectors": [{"name": n, "modifier": getattr(p.modifier, "value", None) or "none"}
                                   for n, p in sorted((params.sparse_vectors or {}).items())],
                "dense_vectors": [{"name": n, "size": p.size, "distance": getattr(p.distance, "value", str(p.distance))}
                                  for n, p in sorted(vectors.items())],
                "size_bytes": None, "model": meta.get("model_name") if isinstance(meta, dict) else None,
                "kind": owner[0] if owner else None, "owner": owner[1] if owner else None, "in_use": user, "deletable": True,
            })
        out["truncated"] = len(names) > MAX_SERVER_COLLECTIONS
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read the server is shown, never a 500
        out["error"] = f"cannot list the collections of {url}: {_reason(exc, api_key)}"
    return out


def delete_server(studio: Studio, name: str, confirm: str) -> dict[str, Any]:
    """Delete a collection of the configured server once ``confirm`` repeats its name (400 otherwise; 404 no server
    or no such collection; 409 a running job's; 502 the server failed)."""
    url, api_key = studio.settings.qdrant()
    if not url:
        raise HTTPException(404, "no Qdrant server is set; set its URL on the Settings page")
    if confirm != name:
        raise HTTPException(400, f"to delete the collection {name!r}, send \"confirm\" with its name exactly")
    owner = _owner_of(name, _server_owners(studio, url))
    if owner and owner[0] == "run" and owner[1] in studio.training():
        raise HTTPException(409, f"the collection {name!r} is in use by the training job of run {owner[1]}")
    try:
        client = _client(url, api_key)
        if not client.collection_exists(name):
            raise HTTPException(404, f"no collection named {name!r} at {url}")
        client.delete_collection(name)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - the server's failure, in one line
        raise HTTPException(502, f"the Qdrant server at {url} did not delete {name!r}: {_reason(exc, api_key)}") from None
    return {"deleted": name, "engine": "server"}
