"""Relevance feedback: re-query with what the shopper did with earlier hits, in Qdrant's own feedback query.

Qdrant's naive feedback strategy scores a product ``x`` for query ``q`` and feedback items (product, score) as

    a · sim(q, x) + Σ over pairs (p, n) with score(p) − score(n) > 0:  c · (score(p) − score(n))^b · (sim(p, x) − sim(n, x))

so a clicked product (score 1) pulls its look-alikes up and a skipped one (score 0) pushes its look-alikes
down; with no such pair (no feedback, or only clicks) it is the plain query times ``a``. sparsefit sends the
feedback products' stored vectors (of the learned model) and rescores the plain query's top ``depth``
candidates, so feedback reorders and refills what the query finds rather than scanning the catalog.

Example:
    >>> FeedbackStrategy(c=0.05).to_json()
    {'a': 1.0, 'b': 1.0, 'c': 0.05, 'depth': 200}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparsefit.errors import SparsefitError

FeedbackItems = Sequence[tuple[str, float]]  # (product id, score): clicked = 1, skipped = 0


@dataclass(frozen=True)
class FeedbackStrategy:
    """Qdrant's naive feedback coefficients and how many of the plain query's candidates are rescored."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.1
    depth: int = 200
    fitted: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise SparsefitError(f"feedback coefficient {name} must be a finite number of 0 or more, got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise SparsefitError(f"feedback depth must be a positive integer, got {self.depth!r}")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"a": self.a, "b": self.b, "c": self.c, "depth": self.depth}
        if self.fitted is not None:
            data["fitted"] = self.fitted
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedbackStrategy:
        try:
            return cls(float(data["a"]), float(data["b"]), float(data["c"]), int(data.get("depth", 200)), data.get("fitted"))
        except (KeyError, TypeError, ValueError) as e:
            raise SparsefitError(f"the saved feedback coefficients are damaged: {e}", hint="train or fit them again") from e


def check_items(items: Any, *, where: str = "feedback") -> list[tuple[str, float]]:
    """Feedback as a list of (product id, finite score); anything else is a clear error.

    Example:
        >>> check_items([("SKU-1", 1), ("SKU-2", 0.0)])
        [('SKU-1', 1.0), ('SKU-2', 0.0)]
    """
    out = []
    for item in items or ():
        try:
            product_id, score = item
        except (TypeError, ValueError):
            raise SparsefitError(f"{where}: each item is a product id and a score, got {item!r}",
                                 hint='send e.g. [{"product_id": "SKU-1", "score": 1}, {"product_id": "SKU-2", "score": 0}]') from None
        if not isinstance(product_id, str) or not product_id:
            raise SparsefitError(f"{where}: a product id must be a non-empty string, got {product_id!r}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise SparsefitError(f"{where}: the score of {product_id!r} must be a number, got {score!r}",
                                 hint="clicked = 1, skipped = 0")
        out.append((product_id, float(score)))
    if len(out) > 100:
        raise SparsefitError(f"{where}: {len(out)} items; at most 100", hint="send the feedback on the last pages shown")
    return out
