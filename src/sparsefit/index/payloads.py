"""Payloads and metadata: what is stored beside the vectors, made JSON-safe on the way in.

A point's payload is the caller's mapping, cleaned (NumPy scalars become Python numbers, NaN and
infinite floats become ``None``, anything that is not JSON is refused with the field's path), plus
the product id under the reserved key :data:`ID_KEY`; :func:`split_payload` takes it apart again,
so ``"_id"`` never shows in a hit's payload. The index's metadata blob must be a plain JSON object
(:func:`json_blob`). Both engines store exactly what these functions return.

Example:
    >>> split_payload(clean_payload({"brand": "Acme"}, "SKU-7"), "ignored")
    ('SKU-7', {'brand': 'Acme'})
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from sparsefit.errors import SparsefitError
from sparsefit.index.ids import PointId, point_key

ID_KEY = "_id"  # reserved payload key: the product id of the point


def clean_payload(payload: Mapping[str, Any] | None, product_id: str) -> dict[str, Any]:
    """Return a JSON-safe copy of ``payload`` with the product id under ``"_id"``.

    NumPy scalars become Python numbers, NaN/infinite floats become ``None``.

    Example:
        >>> clean_payload({"price": float("nan"), "n": 3}, "SKU-7")
        {'price': None, 'n': 3, '_id': 'SKU-7'}
    """
    if payload is None:
        return {ID_KEY: product_id}
    if not isinstance(payload, Mapping):
        raise SparsefitError(
            f"payload of product {product_id!r} is a {type(payload).__name__}, not a mapping"
        )
    if ID_KEY in payload and payload[ID_KEY] != product_id:  # (a catalog whose id column is "_id", as BEIR's, is fine)
        raise SparsefitError(
            f'payload of product {product_id!r} uses the reserved key "{ID_KEY}"',
            hint=f'rename that field; "{ID_KEY}" holds the product id',
        )
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if type(key) is str and (  # fast path for flat catalog rows
            type(value) in _PLAIN or (type(value) is float and math.isfinite(value))
        ):
            out[key] = value
        else:
            out.update(_clean_value({key: value}, product_id, ""))
    out[ID_KEY] = product_id
    return out


_PLAIN = frozenset({str, int, bool, type(None)})


def _clean_value(v: Any, pid: str, path: str) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or isinstance(v, (str, bool, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Mapping):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise SparsefitError(
                    f"payload of product {pid!r} has a non-string key {k!r}",
                    hint="use string field names",
                )
            out[k] = _clean_value(x, pid, f"{path}.{k}" if path else k)
        return out
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean_value(x, pid, path) for x in v]
    raise SparsefitError(
        f'payload of product {pid!r}, field "{path}": {type(v).__name__} is not JSON',
        hint="convert it to a string, number, boolean, list or dict",
    )


def json_blob(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Check that ``meta`` is a JSON object and return a deep copy of it.

    Example:
        >>> json_blob({"model": "abc", "complete": True})
        {'model': 'abc', 'complete': True}
    """
    if not isinstance(meta, Mapping):
        raise SparsefitError(f"index metadata must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as e:
        raise SparsefitError(f"index metadata is not plain JSON: {e}") from e


def split_payload(payload: Mapping[str, Any] | None, pid: PointId) -> tuple[str, dict[str, Any]]:
    """Product id and visible payload from a stored payload (falls back to the point id).

    Example:
        >>> split_payload({"n": 1}, 42)
        ('42', {'n': 1})
    """
    payload = dict(payload or {})
    product_id = payload.pop(ID_KEY, None)
    return (product_id if isinstance(product_id, str) else point_key(pid)), payload
