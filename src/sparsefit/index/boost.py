"""Business boosts: a product's score multiplied by ``1 + Σ weight · field`` over payload fields, in Qdrant.

A boost rescores the search's top ``depth`` products with a Qdrant formula over the search's own score (the
model's, BM25's or the fused one), so a boost reorders what the search found and never drags in products
it did not. A numeric field counts with its value (``{"popularity": 0.1}``: +10 % per unit), a boolean one
as 1 when true (``{"in_stock": 0.5}``: in-stock products +50 %); a product without the field counts 0.
Negative weights demote. Fields are checked against the index's payload (names and types), so a typo or a
text field is a clear error, not a silent no-op.

Example:
    >>> Boost.parse({"in_stock": 0.5, "margin": 0.2}, {"in_stock": "bool", "margin": "number"}).weights
    (('in_stock', 0.5, 'bool'), ('margin', 0.2, 'number'))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sparsefit.errors import SparsefitError

BOOSTABLE = ("number", "bool")
MAX_FIELDS = 20


@dataclass(frozen=True)
class Boost:
    """(field, weight, kind) per boosted payload field, and how many of the search's top products are rescored."""

    weights: tuple[tuple[str, float, str], ...]
    depth: int = 200

    @classmethod
    def parse(cls, spec: Any, types: Mapping[str, str] | None, *, depth: int = 200) -> Boost:
        """A boost from ``{"field": weight}``, checked against the payload's field ``types`` (field -> number, bool,
        text, ...; None: the index does not record them, so every field is taken as a number)."""
        if not isinstance(spec, Mapping) or not spec:
            raise SparsefitError("a boost is a JSON object of payload fields and weights",
                                 hint='send e.g. {"in_stock": 0.5, "popularity": 0.1}')
        if len(spec) > MAX_FIELDS:
            raise SparsefitError(f"a boost names {len(spec)} fields; at most {MAX_FIELDS}")
        known = ", ".join(sorted(k for k, t in (types or {}).items() if t in BOOSTABLE)) or "none"
        out = []
        for field, weight in spec.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise SparsefitError(f"the boost weight of {field!r} must be a number, got {weight!r}")
            kind = "number" if types is None else types.get(field)
            if kind is None:
                raise SparsefitError(f"no product has the payload field {field!r} to boost by",
                                     hint=f"boost by one of the numeric or true/false fields: {known}")
            if kind not in BOOSTABLE:
                raise SparsefitError(f"the payload field {field!r} holds {kind}, not numbers or true/false",
                                     hint=f"boost by one of the numeric or true/false fields: {known}")
            out.append((str(field), float(weight), kind))
        return cls(tuple(out), depth)


def payload_types(payload) -> dict[str, str]:
    """Each payload column's kind for boosts: number, bool, text or other (from a pandas frame's dtypes).

    Example:
        >>> import pandas as pd
        >>> payload_types(pd.DataFrame({"price": [1.5], "in_stock": [True], "brand": ["Acme"]}))
        {'price': 'number', 'in_stock': 'bool', 'brand': 'text'}
    """
    import pandas as pd

    out = {}
    for name in payload.columns:
        dtype = payload[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            out[str(name)] = "bool"
        elif pd.api.types.is_numeric_dtype(dtype):
            out[str(name)] = "number"
        elif pd.api.types.is_string_dtype(dtype) or dtype == object:
            out[str(name)] = "text"
        else:
            out[str(name)] = "other"
    return out
