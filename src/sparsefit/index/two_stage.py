"""Two-stage search: the settings and the maths behind it, engine-neutral.

Search is exact unless the index was created with :class:`TwoStage`: then each point also holds a
*candidate vector* (its postings among the heaviest ``posting_cap`` of each term,
:func:`candidate_vectors`, with the per-term cut-offs of :func:`posting_thresholds` fixed by the
first upsert), the query's heaviest terms (:func:`heaviest_terms`) find candidates there, and
those are rescored exactly with the full vectors: by the server in one engine call (Qdrant's
prefetch), by Qdrant Edge from a copy of the vectors beside the index (``rescore.py``, far
faster). Latency is then bounded by the cap, not by the catalog size; ``exact=True`` still
searches exactly. Each engine stores the settings with its index; :func:`check_two_stage` stops
an open that asks for other ones.

Example:
    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix([[1.0, 1.0], [3.0, 0], [2.0, 0]])
    >>> candidate_vectors(m, posting_thresholds(m, 2)).toarray().tolist()
    [[0.0, 1.0], [3.0, 0.0], [2.0, 0.0]]
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError


@dataclass(frozen=True)
class TwoStage:
    """Approximate search for large catalogs: candidates from capped posting lists, rescored exactly.

    ``posting_cap``: products kept per term in the candidate vectors (each term's heaviest);
    ``query_terms``: the query's heaviest terms used to find candidates; ``candidates``: how
    many are rescored with the full vectors (at least the number of results asked for).
    ``thresholds`` (term -> lowest weight kept) is fixed by the first upsert into the index.

    Example:
        >>> TwoStage(posting_cap=20_000).candidates
        50
        >>> TwoStage.from_json(TwoStage(5, thresholds={3: 0.5}).to_json()).thresholds
        {3: 0.5}
    """

    posting_cap: int = 20_000
    query_terms: int = 8
    candidates: int = 50
    thresholds: dict[int, float] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("posting_cap", "query_terms", "candidates"):
            positive_int(f"two-stage {name}", getattr(self, name))

    @property
    def settings(self) -> dict[str, int]:
        """The three settings without the thresholds (to compare indexes)."""
        return {k: v for k, v in asdict(self).items() if k != "thresholds"}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (term ids as string keys)."""
        data: dict[str, Any] = dict(self.settings)
        if self.thresholds is not None:
            data["thresholds"] = {str(t): w for t, w in sorted(self.thresholds.items())}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TwoStage:
        """Inverse of :meth:`to_json`."""
        try:
            raw = data.get("thresholds")
            thresholds = None if raw is None else {int(t): float(w) for t, w in raw.items()}
            return cls(int(data["posting_cap"]), int(data["query_terms"]), int(data["candidates"]), thresholds)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SparsefitError(f"the index's two-stage settings are damaged: {e}",
                                 hint="rebuild the index with recreate=True") from e


def posting_thresholds(vectors: sp.csr_matrix, cap: int) -> dict[int, float]:
    """For each term with more than ``cap`` postings, the weight of its ``cap``-th heaviest.

    Example:
        >>> posting_thresholds(sp.csr_matrix([[1.0, 1.0], [3.0, 0], [2.0, 0]]), 2)
        {0: 2.0}
    """
    by_term = sp.csc_matrix(vectors)
    lengths = np.diff(by_term.indptr)
    out: dict[int, float] = {}
    for term in np.flatnonzero(lengths > cap):
        weights = by_term.data[by_term.indptr[term] : by_term.indptr[term + 1]]
        out[int(term)] = float(np.partition(weights, -cap)[-cap])
    return out


def candidate_vectors(vectors: sp.csr_matrix, thresholds: Mapping[int, float]) -> sp.csr_matrix:
    """``vectors`` without the postings lighter than their term's threshold (others kept whole).

    Example:
        >>> candidate_vectors(sp.csr_matrix([[1.0, 1.0], [3.0, 0]]), {0: 2.0}).toarray().tolist()
        [[0.0, 1.0], [3.0, 0.0]]
    """
    if not thresholds:
        return sp.csr_matrix(vectors)
    m = sp.csr_matrix(vectors, copy=True)
    floor = np.full(m.shape[1], -np.inf)
    floor[list(thresholds)] = list(thresholds.values())
    m.data[m.data < floor[m.indices]] = 0
    m.eliminate_zeros()
    return m


def heaviest_terms(indices: list[int], values: list[float], k: int) -> tuple[list[int], list[float]]:
    """The ``k`` heaviest entries of a sparse row, in index order.

    Example:
        >>> heaviest_terms([1, 4, 7], [0.2, 0.9, 0.5], 2)
        ([4, 7], [0.9, 0.5])
    """
    if len(indices) <= k:
        return indices, values
    keep = sorted(np.argsort(-np.asarray(values), kind="stable")[:k].tolist())
    return [indices[i] for i in keep], [values[i] for i in keep]


def check_two_stage(stored: TwoStage | None, wanted: TwoStage | None, where: str) -> None:
    """Stop when an existing index was built with other two-stage settings than ``wanted``.

    Example:
        >>> check_two_stage(TwoStage(), None, "here")
    """
    if wanted is not None and stored != wanted:  # the thresholds are not compared
        built = f"two-stage settings {stored.settings}" if stored else "exact search only"
        raise SparsefitError(
            f"index in {where} was built with {built}, not two-stage {wanted.settings}",
            hint="open it without two_stage, or rebuild it with recreate=True",
        )


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int when it is a positive integer (not a bool); otherwise an error naming ``name``.

    Example:
        >>> positive_int("limit", 3)
        3
    """
    try:
        n = operator.index(value)
    except TypeError:
        n = 0
    if isinstance(value, bool) or n < 1:
        raise SparsefitError(f"{name} must be a positive integer, got {value!r}")
    return n
