"""A dense sentence embedding model for the opt-in third leg of hybrid search (``--dense``).

Any sentence-transformers model: an offline alias (``minilm-l6``: all-MiniLM-L6-v2, shipped in a pinned
package and hash-checked), a folder, or a hub id. Vectors are L2-normalised float32 and stored in the
index as the named vector ``dense`` with cosine distance. It is never trained here: it is the untuned
dense baseline the report puts beside the sparse models, and a leg hybrid search can fuse.

Example:
    >>> model = load_dense("minilm-l6")                               # doctest: +SKIP
    >>> model.encode(["cordless drill"]).shape                        # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsefit.errors import SparsefitError


@dataclass
class DenseEncoder:
    """A sentence-transformers model and the name it was asked for."""

    name: str
    model: Any  # sentence_transformers.SentenceTransformer

    @property
    def size(self) -> int:
        size = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(size())  # (renamed in sentence-transformers 5.3)

    def fingerprint(self) -> str:
        """The model's name and size (an index records it, and is rebuilt for another dense model)."""
        return hashlib.sha256(f"{self.name}:{self.size}".encode()).hexdigest()[:16]

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """One L2-normalised float32 row per text."""
        if not len(texts):
            return np.zeros((0, self.size), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def load_dense(name: str, *, device: str = "cpu", max_seq_length: int = 128) -> DenseEncoder:
    """The dense model ``name``: an offline alias, a folder or a hub id; a clear error when it cannot load."""
    from sentence_transformers import SentenceTransformer

    from sparsefit.models.aliases import ALIASES
    from sparsefit.models.encoder import _LOADING
    from sparsefit.progress import quiet_libraries

    source: str | Path = ALIASES[name].folder() if name in ALIASES else name
    try:
        # transformers' loading is not thread-safe (a served run opening while another request loads a model)
        with _LOADING, quiet_libraries():  # and no "Loading weights" bar of transformers' own
            model = SentenceTransformer(str(source), device=device)
    except (OSError, ValueError) as e:
        raise SparsefitError(f"dense model {name!r} could not be loaded: {str(e).splitlines()[0][:160]}",
                             hint="give --dense minilm-l6 (offline), a sentence-transformers folder, or a hub id") from e
    model.max_seq_length = max_seq_length
    return DenseEncoder(name, model)
