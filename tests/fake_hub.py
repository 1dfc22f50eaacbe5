"""A local stand-in for the Hugging Face Hub's HTTP API, for the calls ``huggingface_hub`` makes to publish.

Why: ``sparsefit publish`` is tested through the real ``huggingface_hub`` client (``HfApi(endpoint=...)``),
so what is checked is the library's own requests (paths, methods, JSON and NDJSON bodies, the Bearer token)
and its handling of the hub's answers, not a mock of our code. Only the standard library is used: a
``ThreadingHTTPServer`` on 127.0.0.1 and a free port, in a daemon thread, state in memory.

The calls served (model repos only), in the shapes the hub answers them:

- ``POST /api/repos/create`` (``create_repo``): 200 ``{"url", "name", "id"}``; 409 ``{"error", "url"}`` when the
  repo exists (``create_repo(exist_ok=True)`` reads that ``url``).
- ``GET /api/models/ORG/NAME[/revision/REV]`` (``repo_info``, asked by ``create_repo(exist_ok=True)`` after a
  401/403 and by ``create_commit`` when nothing changed): ``{"id", "private", "sha", "siblings"}``.
- ``GET /api/models/ORG/NAME/refs`` (``list_repo_refs``), ``POST /api/models/ORG/NAME/branch/BRANCH``
  (``create_branch``; 409 when it exists), ``GET /api/whoami-v2``.
- ``POST /api/validate-yaml`` (``create_commit`` checks a README.md's metadata first).
- ``POST /api/models/ORG/NAME/preupload/REV``: every file is answered ``"uploadMode": "regular"`` (never
  ``"lfs"``: with ``hf_xet`` installed the client would then upload through Xet's CAS servers, which this fake
  does not speak), ``"shouldIgnore": false`` and the git blob id of the file already there (``"oid"``), so that
  the client skips unchanged files as it does against the hub.
- ``POST /api/models/ORG/NAME/commit/REV`` (``application/x-ndjson``): a ``header`` line, then ``file`` lines
  (base64 content), ``deletedFile`` and ``deletedFolder``; 200 ``{"success", "commitOid", "commitUrl",
  "hookOutput", "pullRequestUrl"}``. An ``lfsFile`` line is refused (400): nothing was pre-uploaded.

Every request must carry ``Authorization: Bearer <token>`` with the token the fake was given (a wrong one:
401 and the hub's ``{"error": "Invalid credentials in Authorization header"}``, with the same text in
``X-Error-Message``); a token in ``read_tokens`` may read but gets 403 on writes. Errors carry the hub's
``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``) so that ``huggingface_hub`` raises its own error types.
Requests for anything else are answered 404 and listed in :attr:`FakeHub.unhandled`.

Example:
    >>> from huggingface_hub import HfApi                                           # doctest: +SKIP
    >>> with fake_hub("hf_test") as hub:                                            # doctest: +SKIP
    ...     api = HfApi(endpoint=hub.url, token="hf_test")
    ...     _ = api.create_repo("acme/model", private=True)
    ...     _ = api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="acme/model")
    ...     hub.files("acme/model")["config.json"], hub.repos["acme/model"].private
    (b'{}', True)
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"  # the hub's words (huggingface_hub matches them)
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(content: bytes) -> str:
    """The git object id of a file (what the hub reports as a regular file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]
    parent: str | None


@dataclass
class FakeRepo:
    """A model repo: its visibility and branches (branch name -> commit oid)."""

    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    """An error answer: status, the hub's JSON body and its ``X-Error-Code``/``X-Error-Message`` headers."""

    def __init__(self, status: int, message: str, code: str | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.body = body if body is not None else {"error": message}


class FakeHub:
    """The state of a fake hub and the handling of its requests; use it through :func:`fake_hub`."""

    def __init__(self, token: str, *, read_tokens: tuple[str, ...] = (), user: str = "tester") -> None:
        self.token = token
        self.read_tokens = tuple(read_tokens)
        self.user = user
        self.url = ""  # set by fake_hub once the server listens
        self.repos: dict[str, FakeRepo] = {}
        self.commits: dict[str, Commit] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.unhandled: list[tuple[str, str]] = []  # requests for a route the fake does not serve
        self._lock = threading.Lock()
        self._counter = itertools.count()

    # -- what a test reads -------------------------------------------------------------------
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files (path -> bytes) at the head of ``revision`` (a branch) of ``repo_id``."""
        with self._lock:
            return dict(self.commits[self.repos[repo_id].branches[revision]].files)

    def history(self, repo_id: str, revision: str = "main") -> list[str]:
        """The commit messages of ``revision``, newest first."""
        with self._lock:
            oid: str | None = self.repos[repo_id].branches[revision]
            messages = []
            while oid is not None:
                messages.append(self.commits[oid].message)
                oid = self.commits[oid].parent
            return messages

    # -- handling ----------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (status, JSON body); raises :class:`HubError` for an error answer."""
        parts = urlsplit(raw_path)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append((method, parts.path))
            write = self._authorize(headers.get("Authorization"))
            if segments[:2] == ["api", "whoami-v2"] and method == "GET":
                return 200, {"type": "user", "name": self.user,
                             "auth": {"type": "access_token", "accessToken": {"role": "write" if write else "read"}}}
            if segments[:2] == ["api", "validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body or b"{}"))
            if segments[:3] == ["api", "repos", "create"] and method == "POST":
                self._require_write(write)
                return self._create_repo(json.loads(body or b"{}"))
            if len(segments) >= 4 and segments[:2] == ["api", "models"]:
                repo_id, action, rest = f"{segments[2]}/{segments[3]}", segments[4:5], "/".join(segments[5:])
                repo = self.repos.get(repo_id)
                if repo is None:
                    raise HubError(404, "Repository not found", "RepoNotFound")
                if method == "GET" and not action:
                    return self._repo_info(repo, "main")
                if method == "GET" and action == ["revision"] and rest:
                    return self._repo_info(repo, rest)
                if method == "GET" and action == ["refs"] and not rest:
                    return 200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
                                              for b, oid in repo.branches.items()], "converts": [], "tags": []}
                if method == "POST" and action == ["branch"] and rest:
                    self._require_write(write)
                    return self._create_branch(repo, rest, json.loads(body or b"{}"))
                if method == "POST" and action == ["preupload"] and rest:
                    self._require_write(write)
                    return self._preupload(repo, rest, json.loads(body or b"{}"))
                if method == "POST" and action == ["commit"] and rest:
                    self._require_write(write)
                    if query.get("create_pr"):
                        raise HubError(400, "the fake hub does not open pull requests")
                    return self._commit(repo, rest, body)
            self.unhandled.append((method, parts.path))
            raise HubError(404, "Not Found")

    def _authorize(self, header: str | None) -> bool:
        """Whether the request may write; a missing or wrong token is 401, as on the hub."""
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HubError(401, "You must be authenticated to access this resource (no Authorization header)")
        if given == self.token:
            return True
        if given in self.read_tokens:
            return False
        raise HubError(401, INVALID_CREDENTIALS)

    @staticmethod
    def _require_write(write: bool) -> None:
        if not write:
            raise HubError(403, "You don't have the rights to write here: the token is a read token")

    def _new_commit(self, message: str, files: dict[str, bytes], parent: str | None) -> str:
        seed = f"{next(self._counter)}\0{parent}\0{message}\0" + "\0".join(
            f"{path}\0{git_blob_id(content)}" for path, content in sorted(files.items()))
        oid = hashlib.sha1(seed.encode()).hexdigest()
        self.commits[oid] = Commit(oid, message, files, parent)
        return oid

    def _validate_yaml(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        content = payload.get("content")
        if not isinstance(content, str):
            raise HubError(400, "content is required")
        if content.startswith("---\n") and "\n---" not in content[3:]:
            message = "the metadata block is not closed by a --- line"
            raise HubError(400, message, body={"errors": [{"message": message}], "warnings": []})
        return 200, {"errors": [], "warnings": []}

    def _create_repo(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if payload.get("type", "model") != "model":
            raise HubError(400, "the fake hub serves model repos only")
        name, organization = payload.get("name"), payload.get("organization") or self.user
        if not isinstance(name, str) or not name:
            raise HubError(400, "name is required")
        repo_id = f"{organization}/{name}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:  # the hub's 409 names the repo's URL too: create_repo(exist_ok=True) returns it
            message = "You already created this model repo"
            raise HubError(409, message, body={"error": message, "url": url})
        visibility = payload.get("visibility")
        private = visibility == "private" if visibility is not None else bool(payload.get("private", False))
        repo = FakeRepo(repo_id, private)
        repo.branches["main"] = self._new_commit("initial commit", {".gitattributes": GITATTRIBUTES}, None)
        self.repos[repo_id] = repo
        return 200, {"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]}

    def _head(self, repo: FakeRepo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in self.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _repo_info(self, repo: FakeRepo, revision: str) -> tuple[int, dict[str, Any]]:
        oid = self._head(repo, revision)
        return 200, {"id": repo.repo_id, "modelId": repo.repo_id, "private": repo.private, "sha": oid,
                     "siblings": [{"rfilename": path} for path in sorted(self.commits[oid].files)]}

    def _create_branch(self, repo: FakeRepo, branch: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if branch in repo.branches:
            raise HubError(409, "Reference already exists")
        repo.branches[branch] = self._head(repo, payload.get("startingPoint") or "main")
        return 200, {}

    def _preupload(self, repo: FakeRepo, revision: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        head = self.commits[self._head(repo, revision)]
        files = payload.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str)
                                                  and isinstance(f.get("size"), int) and isinstance(f.get("sample"), str)
                                                  for f in files):
            raise HubError(400, "files must be a list of {path, size, sample}")
        answer = []
        for entry in files:
            base64.b64decode(entry["sample"], validate=True)  # a malformed sample is a 400, as on the hub
            existing = head.files.get(entry["path"])
            answer.append({"path": entry["path"], "uploadMode": "regular", "shouldIgnore": False,
                           "oid": git_blob_id(existing) if existing is not None else None})
        return 200, {"files": answer, "commitOid": head.oid}

    def _commit(self, repo: FakeRepo, revision: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if revision not in repo.branches:
            self._head(repo, revision)  # a commit oid exists but is not a branch: the hub refuses too
            raise HubError(400, f"Cannot commit to {revision}: not a branch")
        try:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise HubError(400, f"the commit body is not NDJSON ({exc})") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the header")
        header = lines[0]["value"]
        parent = repo.branches[revision]
        if header.get("parentCommit") and header["parentCommit"] != parent:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(self.commits[parent].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = value.get("path")
            if not isinstance(path, str) or not path or path.startswith("/"):
                raise HubError(400, f"invalid path in a {key} line")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "file content must be base64")
                files[path] = base64.b64decode(value["content"], validate=True)
            elif key == "lfsFile":
                raise HubError(400, f"LFS file {path} was never uploaded (the fake answers every file 'regular')")
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                for name in [n for n in files if n.startswith(prefix)]:
                    del files[name]
            else:
                raise HubError(400, f"unknown NDJSON key {key!r}")
        oid = self._new_commit(header.get("summary") or "", files, parent)
        repo.branches[revision] = oid
        return 200, {"success": True, "commitOid": oid, "commitUrl": f"{self.url}/{repo.repo_id}/commit/{oid}",
                     "hookOutput": "", "pullRequestUrl": None}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1, but each connection closes after its answer: a kept-alive connection would outlive the
        # server (its handler thread goes on answering after shutdown), so "the hub is gone" could not be tested.
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():  # trailers, then the blank line
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body()
            extra: dict[str, str] = {}
            try:
                status, answer = hub.handle(self.command, self.path, self.headers, body)
            except HubError as err:
                status, answer = err.status, err.body
                extra["X-Error-Message"] = err.message
                if err.code:
                    extra["X-Error-Code"] = err.code
            except Exception as exc:  # noqa: BLE001 - a bug in the fake is a 500 the test sees, not a hang
                status, answer = 500, {"error": f"fake hub failure: {type(exc).__name__}: {exc}"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_hub(token: str, *, read_tokens: tuple[str, ...] = (), user: str = "tester") -> Iterator[FakeHub]:
    """A fake hub listening on 127.0.0.1 (a free port) for the block; ``hub.url`` is its ``endpoint=``."""
    hub = FakeHub(token, read_tokens=read_tokens, user=user)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
