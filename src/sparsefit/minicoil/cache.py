"""The training contexts' embeddings, kept on disk between runs.

Why: embedding a catalog's contexts is most of a training run (minutes on a CPU); fitting the layers
is the rest. A second run on the same catalog with the same models, analyzer and context selection
(only the fitting settings or ``dims`` changed, or a run killed while fitting) reads them back.
The key hashes everything that shapes them; the file is written atomically, so a killed run never
leaves a half-written one.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> make = lambda: {"x": np.arange(3)}
    >>> cached(folder, "k1", make)["x"].tolist(), cached(folder, "k1", dict)["x"].tolist()
    ([0, 1, 2], [0, 1, 2])
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sparsefit.files import replace_file


def cache_key(texts: Sequence[str], settings: dict[str, Any]) -> str:
    """A hash of the texts (in order) and the settings that shape their embeddings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:24]


def cached(folder: Path | None, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored under ``key`` in ``folder``, or ``compute()`` stored there (None: no cache)."""
    if folder is None:
        return compute()
    path = Path(folder) / f"minicoil-contexts-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # damaged: compute again and replace it
    arrays = compute()
    replace_file(path, lambda temporary: np.savez(temporary, **arrays), suffix=".npz")
    return arrays
