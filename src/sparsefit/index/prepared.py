"""What every engine gets and gives back: the named vectors, prepared points and queries, hits.

:class:`~sparsefit.index.base.SparseIndex` checks its inputs and turns them into these; an engine
(``edge.py``, ``client.py``) and its query translation (``edge_query.py``, ``client_query.py``) read only
these. Kept apart from the interface so both sides share one definition.

Example:
    >>> vector_names(None), PreparedPoint(7, [], [], {"_id": "7"}).named_vectors()
    (('sparse',), {})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sparsefit.index.bm25 import BM25_VECTOR
from sparsefit.index.boost import Boost
from sparsefit.index.feedback import FeedbackStrategy
from sparsefit.index.filters import Filter
from sparsefit.index.fusion import Fusion
from sparsefit.index.payloads import split_payload
from sparsefit.index.two_stage import TwoStage

VECTOR_NAME = "sparse"
CANDIDATE_VECTOR = "sparse_candidates"  # two-stage search: capped posting lists
DENSE_VECTOR = "dense"  # opt-in: a sentence embedding (cosine), the third leg of hybrid search

PayloadIndexKind = Literal["keyword", "integer", "float", "bool"]
PAYLOAD_INDEX_KINDS = ("keyword", "integer", "float", "bool")
Modifier = Literal["none", "idf"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Hit:
    """One search result: the product id, its score and its payload (without ``"_id"``)."""

    product_id: str
    score: float
    payload: dict[str, Any]


# --------------------------------------------------------------------------- what engines get


@dataclass(frozen=True)
class PreparedPoint:
    """A point as every engine needs it: id, vector parts (maybe empty), payload with ``_id``.

    ``candidate`` is the two-stage candidate vector (indices, values), None without two-stage;
    ``bm25`` the point's Qdrant BM25 vector, None in an index without one.
    """

    id: int | str
    indices: list[int]
    values: list[float]
    payload: dict[str, Any]
    candidate: tuple[list[int], list[float]] | None = None
    bm25: tuple[list[int], list[float]] | None = None
    dense: list[float] | None = None

    def named_vectors(self) -> dict[str, tuple[list[int], list[float]]]:
        """The point's non-empty vectors by name, as (indices, values); none for an all-zero row."""
        vectors = {VECTOR_NAME: (self.indices, self.values)} if self.indices else {}
        if self.candidate is not None and self.candidate[0]:
            vectors[CANDIDATE_VECTOR] = self.candidate
        if self.bm25 is not None and self.bm25[0]:
            vectors[BM25_VECTOR] = self.bm25
        return vectors


@dataclass(frozen=True)
class PreparedQuery:
    """A non-empty query vector, its filter and the number of results wanted from the engine.

    ``using`` names the vector searched (the learned one, Qdrant's BM25, or the dense one: ``indices`` None).
    A hybrid query has ``legs`` instead, (vector name, indices or None for a dense vector, values) each, fused
    in the engine as ``fusion`` says.
    """

    indices: list[int] | None
    values: list[float]
    filter: Filter | None
    limit: int
    candidate: tuple[list[int], list[float]] | None = None  # two-stage: terms that find candidates
    candidates: int = 0  # two-stage: how many candidates are rescored
    using: str = VECTOR_NAME
    legs: tuple[tuple[str, list[int] | None, list[float]], ...] | None = None
    fusion: Fusion | None = None
    depth: int = 0  # hybrid: products each leg prefetches (fixed, while ``limit`` may grow to settle a tie)
    feedback: tuple[tuple[list[int], list[float], float], ...] | None = None  # learned vectors of rated products, score
    strategy: FeedbackStrategy | None = None
    boost: Boost | None = None  # the whole query's top products rescored by a formula over payload fields


RawHit = tuple[str, float, dict[str, Any]]  # product id, score, payload without "_id"


def raw_hit(point: Any, with_payload: bool) -> RawHit:
    """A scored point as an engine returns it (``.id``, ``.score``, ``.payload``) as a :data:`RawHit`."""
    product_id, payload = split_payload(point.payload, point.id)
    return product_id, float(point.score), payload if with_payload else {}


def vector_names(two_stage: TwoStage | None) -> tuple[str, ...]:
    """The sparse vectors an index is created with (besides BM25's): the full one, and the candidate one for two-stage."""
    return (VECTOR_NAME,) if two_stage is None else (VECTOR_NAME, CANDIDATE_VECTOR)


def fusion_legs(query: PreparedQuery) -> tuple[list[tuple[str, list[int] | None, list[float]]], Fusion]:
    """A hybrid query's non-empty legs and the fusion over just those (a leg with no term finds nothing)."""
    legs = query.legs or ()
    present = [i for i, leg in enumerate(legs) if leg[2]]
    return [legs[i] for i in present], (query.fusion or Fusion()).for_legs(present)
