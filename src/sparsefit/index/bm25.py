"""Qdrant's own BM25, as a named sparse vector beside the learned one.

The term weights come from Qdrant's BM25 model (``qdrant_edge.Bm25``: Qdrant's word tokenizer,
English stopwords and Snowball stemmer, tokens hashed to 32-bit ids), computed in this process for
both engines, so an Edge folder and a server collection hold the very same vectors; the index
stores them with Qdrant's IDF modifier, so the engine supplies IDF from the collection it holds.
A document's weight is BM25's saturated term frequency, ``tf·(k+1) / (tf + k·(1 − b + b·len/avg_len))``;
a query's is 1 per distinct token, so a query's score is BM25 itself. ``k`` and ``b`` default to
bm25s' (the report's other BM25) and ``avg_len`` is measured on the catalog (:meth:`Bm25Model.fit`).

Example:
    >>> model = Bm25Model.fit(["cordless drill", "garden hose 50 ft"])
    >>> model.avg_len, model.documents(["drill drills"]).nnz, model.queries(["a drill"]).data.tolist()
    (3.0, 1, [1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import numpy as np
import qdrant_edge as qe
import scipy.sparse as sp

from sparsefit.errors import SparsefitError

BM25_VECTOR = "bm25"  # the named vector of Qdrant's BM25 in every index that has it
DIMENSION = 2**32  # token hashes are unsigned 32-bit


@dataclass(frozen=True)
class Bm25Model:
    """Qdrant's BM25 with its parameters (stored in the index metadata, so queries and documents agree)."""

    k: float = 1.5
    b: float = 0.75
    avg_len: float = 256.0  # tokens per document after stopwords; Qdrant's default, :meth:`fit` measures it

    def __post_init__(self) -> None:
        if not (self.k >= 0 and 0 <= self.b <= 1 and self.avg_len > 0):
            raise SparsefitError(f"BM25 parameters out of range: k={self.k}, b={self.b}, avg_len={self.avg_len}",
                                 hint="k >= 0, 0 <= b <= 1, avg_len > 0")

    @classmethod
    def fit(cls, texts: Sequence[str], *, k: float = 1.5, b: float = 0.75, sample: int = 20_000) -> Bm25Model:
        """The model with ``avg_len`` measured on (a seeded sample of at most ``sample`` of) ``texts``.

        Measured with ``b = 0``, where a weight ``w`` gives back its term frequency ``w·k / (k + 1 − w)``.
        """
        texts = list(texts)
        if len(texts) > sample:
            picked = np.random.default_rng(0).choice(len(texts), size=sample, replace=False)
            texts = [texts[i] for i in sorted(picked)]
        plain = qe.Bm25(qe.Bm25Config(k=1.0, b=0.0))
        lengths = [sum(w / (2.0 - w) for w in plain.embed_document(t).values) for t in texts]
        return cls(k=k, b=b, avg_len=round(max(float(np.mean(lengths)) if lengths else 1.0, 1.0), 3))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Bm25Model:
        """Inverse of :meth:`to_json`; ``None`` (an index written without it) gives the defaults."""
        try:
            return cls(**{key: float(data[key]) for key in ("k", "b", "avg_len")}) if data else cls()
        except (KeyError, TypeError, ValueError) as e:
            raise SparsefitError(f"the index's BM25 settings are damaged: {e}", hint="rebuild the index") from e

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @cached_property
    def _model(self) -> qe.Bm25:
        return qe.Bm25(qe.Bm25Config(k=self.k, b=self.b, avg_len=self.avg_len))

    def documents(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row of BM25 term weights per text (an empty row for a text of stopwords only)."""
        return _rows([self._model.embed_document(t) for t in texts])

    def queries(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per query: weight 1 for each distinct token."""
        return _rows([self._model.embed_query(t) for t in texts])


def _rows(vectors: list[Any]) -> sp.csr_matrix:
    """Qdrant sparse vectors as CSR rows with sorted indices (64-bit: hashes reach 2**32)."""
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(v.indices) for v in vectors])
    indices = np.fromiter((i for v in vectors for i in v.indices), dtype=np.int64, count=int(indptr[-1]))
    values = np.fromiter((w for v in vectors for w in v.values), dtype=np.float64, count=int(indptr[-1]))
    matrix = sp.csr_matrix((values, indices, indptr), shape=(len(vectors), DIMENSION))
    matrix.sort_indices()
    return matrix
