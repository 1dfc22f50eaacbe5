"""How a hybrid query fuses its legs (the learned sparse vector, Qdrant's BM25, a dense vector) in Qdrant.

A hybrid search is one Qdrant query: one prefetch per leg (its top ``prefetch`` products), fused by
the engine, never merged in Python:

* ``rrf``: weighted reciprocal rank fusion, ``Σ weight_i / (k + rank_i)`` (rank from 0), Qdrant's ``Rrf``;
* ``dbsf``: Qdrant's distribution-based score fusion (each leg's scores normalised by their mean ± 3σ,
  then summed; it takes no weights);
* ``formula``: ``Σ weight_i · s_i / (s_i + scale_i)`` through a Qdrant formula, each leg's score squashed
  into [0, 1) by its own ``scale`` (fitted: the median of that leg's top score), 0 for a product the leg
  did not find.

Example:
    >>> Fusion("rrf", (0.7, 0.3)).describe()
    'rrf (k=2) weights 0.70/0.30'
    >>> Fusion.from_json(Fusion("formula", (1.0, 1.0), scales=(20.0, 8.5)).to_json()).scales
    (20.0, 8.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sparsefit.errors import SparsefitError

FusionMethod = Literal["rrf", "dbsf", "formula"]
FUSION_METHODS: tuple[str, ...] = ("rrf", "dbsf", "formula")


@dataclass(frozen=True)
class Fusion:
    """A fusion method and its parameters; ``weights`` and ``scales`` follow the order of the legs."""

    method: FusionMethod = "rrf"
    weights: tuple[float, ...] = (0.5, 0.5)
    k: int = 2
    scales: tuple[float, ...] | None = None
    prefetch: int = 100
    fitted: dict[str, Any] | None = field(default=None, compare=False)  # how the weights were chosen, for the report

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise SparsefitError(f"unknown fusion {self.method!r}", hint=f"use one of {', '.join(FUSION_METHODS)}")
        weights = tuple(float(w) for w in self.weights)
        if not weights or any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
            raise SparsefitError(f"fusion weights must be finite, non-negative and not all 0, got {list(self.weights)}")
        object.__setattr__(self, "weights", weights)
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise SparsefitError(f"RRF k must be a positive integer, got {self.k!r}")
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) or self.prefetch < 1:
            raise SparsefitError(f"prefetch must be a positive integer, got {self.prefetch!r}")
        if self.scales is not None:
            scales = tuple(float(s) for s in self.scales)
            if len(scales) != len(weights) or any(not math.isfinite(s) or s <= 0 for s in scales):
                raise SparsefitError(f"formula scales must be one positive number per leg, got {list(self.scales)}")
            object.__setattr__(self, "scales", scales)
        elif self.method == "formula":
            object.__setattr__(self, "scales", tuple(1.0 for _ in weights))

    def for_legs(self, present: list[int]) -> Fusion:
        """The same fusion over the legs at positions ``present`` (a query whose other legs are empty)."""
        if len(present) == len(self.weights):
            return self
        pick = [self.weights[i] for i in present]
        if not any(pick):
            pick = [1.0] * len(present)
        scales = None if self.scales is None else tuple(self.scales[i] for i in present)
        return Fusion(self.method, tuple(pick), self.k, scales, self.prefetch, self.fitted)

    def describe(self) -> str:
        """A short human form, for tables and logs."""
        weights = "/".join(f"{w:.2f}" for w in self.weights)
        if self.method == "rrf":
            return f"rrf (k={self.k}) weights {weights}"
        if self.method == "dbsf":
            return "dbsf"
        return f"formula weights {weights}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "weights": list(self.weights), "k": self.k,
                                "scales": list(self.scales) if self.scales else None, "prefetch": self.prefetch}
        if self.fitted is not None:
            data["fitted"] = self.fitted
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fusion:
        """Inverse of :meth:`to_json`; damaged data is a :class:`SparsefitError`."""
        try:
            scales = data.get("scales")
            return cls(data["method"], tuple(data["weights"]), int(data.get("k", 2)),
                       tuple(scales) if scales else None, int(data.get("prefetch", 100)), data.get("fitted"))
        except (KeyError, TypeError, ValueError) as e:
            raise SparsefitError(f"the saved fusion settings are damaged: {e}", hint="train or fit them again") from e
