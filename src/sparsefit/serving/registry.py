"""The runs a service knows (the served ones and the studio workspace's), with their search services opened once.

Example:
    >>> runs = Runs([Path("runs/demo")], workspace=None)   # doctest: +SKIP
    >>> runs.service("demo").search("cordless drill")      # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from sparsefit.run import exported


class Runs:
    """Run folders by name (the served ones and the workspace's), with their services opened once."""

    def __init__(self, runs: list[Path], workspace: Path | None, device: str | None = None) -> None:
        self.device = device
        self.fixed = {p.name: p for p in runs}
        self.default = runs[0].name if runs else None
        self.workspace = workspace
        self._services: dict[str, Any] = {}
        self._lock = threading.Lock()

    def folders(self) -> dict[str, Path]:
        out = dict(self.fixed)
        if self.workspace is not None and (self.workspace / "runs").is_dir():
            for folder in sorted((self.workspace / "runs").iterdir()):
                if folder.is_dir():
                    out.setdefault(folder.name, folder)
        return out

    def folder(self, name: str | None) -> Path:
        name = name or self.default
        if name is None:
            raise HTTPException(400, "no run given and none is served by default; pass \"run\"")
        folder = self.folders().get(name)
        if folder is None:
            raise HTTPException(404, f"no run named {name!r}")
        return folder

    def service(self, name: str | None):
        from sparsefit.serving.service import SearchService

        folder = self.folder(name)
        with self._lock:
            if folder.name not in self._services:
                if not exported(folder):
                    raise HTTPException(409, f"run {folder.name!r} has not finished; search it once it has")
                self._services[folder.name] = SearchService.open(folder, device=self.device)
            return self._services[folder.name]

    def opened(self, name: str):
        """The run's service when it is open (its index is then held by this process), else None."""
        with self._lock:
            return self._services.get(name)

    def forget(self, name: str) -> None:
        """Close the run's service, if open, so that its index folder is free (to be deleted); a later search
        opens it again."""
        with self._lock:
            service = self._services.pop(name, None)
        if service is not None:
            service.close()

    def close(self) -> None:
        for service in self._services.values():
            service.close()
