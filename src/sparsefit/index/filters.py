"""The filter language: what a search may be restricted to, parsed and checked before any engine sees it.

A :class:`Filter` holds ``must`` and ``must_not`` conditions on payload fields (:class:`Match` for
exact values, :class:`Range` for numeric bounds) and product ids to exclude. It is engine-neutral:
``edge.py`` and ``client.py`` each translate it into their own filter. Everything a user can get
wrong is rejected here with a hint, so both engines accept and refuse the same filters: the key
shapes, value types (floats match only through ranges, integers must fit Qdrant's signed 64 bits),
and limits on size, since each condition costs the engine work per candidate.
:func:`filters_per_row` checks the filters of a batch search, one for all rows or one per row.

Example:
    >>> parse_filter({"brand": "Acme", "price": {"lt": 50}}).must[1]
    Range(key='price', gt=None, gte=None, lt=50, lte=None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sparsefit.errors import SparsefitError
from sparsefit.index.ids import point_id

Scalar = str | int | bool
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # payload integers are signed 64-bit in Qdrant


@dataclass(frozen=True)
class Match:
    """Payload ``key`` equals ``value``; a sequence of values means "any of them".

    Example:
        >>> Match("color", ["red", "blue"]).value
        ('red', 'blue')
    """

    key: str
    value: Scalar | Sequence[Scalar]

    def __post_init__(self) -> None:
        check_key(self.key)
        if isinstance(self.value, (list, tuple)):
            object.__setattr__(self, "value", _check_any(self.key, self.value))
        else:
            _check_scalar(self.key, self.value)

    @property
    def values(self) -> tuple[Scalar, ...]:
        """The accepted values as a tuple (one element for a plain match)."""
        return self.value if isinstance(self.value, tuple) else (self.value,)


@dataclass(frozen=True)
class Range:
    """Payload ``key`` is a number within the given bounds.

    Example:
        >>> Range("price", gte=10, lt=50).lt
        50
    """

    key: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    def __post_init__(self) -> None:
        check_key(self.key)
        bounds = {"gt": self.gt, "gte": self.gte, "lt": self.lt, "lte": self.lte}
        if all(v is None for v in bounds.values()):
            raise SparsefitError(
                f'range filter on "{self.key}" has no bound',
                hint='give at least one of "gt", "gte", "lt", "lte"',
            )
        for name, v in bounds.items():
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v)
            ):
                raise SparsefitError(
                    f'range filter on "{self.key}": "{name}" must be a finite number, got {v!r}',
                    hint='write e.g. {"price": {"lt": 50}}',
                )


Condition = Match | Range


@dataclass(frozen=True)
class Filter:
    """All ``must`` conditions hold, no ``must_not`` condition holds, ids not excluded.

    Example:
        >>> f = Filter(must=[Match("brand", "Acme")], exclude_ids=["SKU-7"])
        >>> f.exclude_ids
        ('SKU-7',)
    """

    must: Sequence[Condition] = ()
    must_not: Sequence[Condition] = ()
    exclude_ids: Sequence[str] = ()

    def __post_init__(self) -> None:
        for name in ("must", "must_not"):
            value = getattr(self, name)
            conds = (value,) if isinstance(value, (Match, Range)) else tuple(value)
            for c in conds:
                if not isinstance(c, (Match, Range)):
                    raise SparsefitError(
                        f"filter {name} holds {c!r}, not a Match or Range condition"
                    )
            object.__setattr__(self, name, conds)
        if isinstance(self.exclude_ids, str):
            raise SparsefitError(
                "filter exclude_ids is a single string", hint="pass a list of product ids"
            )
        ids = tuple(self.exclude_ids)
        for pid in ids:
            point_id(pid)  # validates
        object.__setattr__(self, "exclude_ids", ids)

    @property
    def is_empty(self) -> bool:
        """True when the filter excludes nothing."""
        return not (self.must or self.must_not or self.exclude_ids)


_RANGE_OPS = ("gt", "gte", "lt", "lte")
# Limits on a filter from user input: enough for any real facet selection, and each costs the engine
# work per candidate (a 4 MB filter once took seconds).
MAX_FILTER_CONDITIONS = 64
MAX_ANY_VALUES = 1_000
MAX_EXCLUDE_IDS = 10_000
_FILTER_SHAPES = (
    'write {"brand": "Acme"}, {"color": ["red", "blue"]}, {"price": {"gte": 10, "lt": 50}}, '
    '{"brand": {"not": "Acme"}} or {"$exclude_ids": ["SKU-7"]}'
)


def parse_filter(d: Mapping[str, Any] | None) -> Filter:
    """Build a :class:`Filter` from a JSON-ish dict.

    A scalar value is an exact match, a list matches any of its values, a dict with
    ``gt``/``gte``/``lt``/``lte`` is a numeric range, ``{"not": <value>}`` negates a value
    and the top-level key ``"$exclude_ids"`` lists product ids to leave out.

    Example:
        >>> f = parse_filter({"brand": {"not": "Acme"}, "$exclude_ids": ["SKU-7"]})
        >>> f.must_not, f.exclude_ids
        ((Match(key='brand', value='Acme'),), ('SKU-7',))
    """
    if d is None:
        return Filter()
    if not isinstance(d, Mapping):
        raise SparsefitError(
            f"a filter must be a mapping, got {type(d).__name__}", hint=_FILTER_SHAPES
        )
    if len(d) > MAX_FILTER_CONDITIONS:
        raise SparsefitError(f"the filter has {len(d)} conditions", hint=f"use at most {MAX_FILTER_CONDITIONS}")
    must: list[Condition] = []
    must_not: list[Condition] = []
    exclude: list[str] = []
    for key, value in d.items():
        if key == "$exclude_ids":
            exclude.extend(_parse_exclude_ids(value))
        elif isinstance(value, Mapping) and set(value) == {"not"}:
            must_not.append(_parse_condition(key, value["not"]))
        else:
            must.append(_parse_condition(key, value))
    return Filter(must=must, must_not=must_not, exclude_ids=exclude)


def _parse_exclude_ids(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SparsefitError('"$exclude_ids" must be a list of product ids', hint=_FILTER_SHAPES)
    if len(value) > MAX_EXCLUDE_IDS:
        raise SparsefitError(f'"$exclude_ids" lists {len(value):,} ids', hint=f"list at most {MAX_EXCLUDE_IDS:,}")
    return list(value)


def _parse_condition(key: Any, value: Any) -> Condition:
    if not isinstance(key, str) or key.startswith("$"):
        raise SparsefitError(f"unknown filter key {key!r}", hint=_FILTER_SHAPES)
    if isinstance(value, Mapping):
        unknown = set(value) - set(_RANGE_OPS)
        if unknown or not value:
            raise SparsefitError(
                f'filter on "{key}" has unknown operators {sorted(map(str, unknown)) or "{}"}',
                hint=_FILTER_SHAPES,
            )
        return Range(key, **dict(value))
    return Match(key, value)


def check_key(key: Any) -> None:
    """Reject a payload field key that is not a non-empty string (filters and payload indexes)."""
    if not isinstance(key, str) or not key:
        raise SparsefitError(
            f"filter key must be a non-empty string, got {key!r}", hint=_FILTER_SHAPES
        )


def _finite(v: int | float) -> bool:
    """True for a number that is a finite float (a JSON integer may be too large for one)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _check_scalar(key: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and not MIN_INT <= value <= MAX_INT:
        raise SparsefitError(
            f'filter on "{key}" matches the integer {value}, outside the 64-bit range '
            f"{MIN_INT} to {MAX_INT} of payload integers",
            hint=f'match it as a string ("{value}") or use a range',
        )
    if isinstance(value, float):
        raise SparsefitError(
            f'filter on "{key}" matches the float {value!r}; exact matches take strings, '
            "integers or booleans",
            hint=f'use a range such as {{"{key}": {{"gte": {value!r}, "lte": {value!r}}}}}',
        )
    if not isinstance(value, (str, int, bool)):
        raise SparsefitError(
            f'filter on "{key}" has a value of type {type(value).__name__}', hint=_FILTER_SHAPES
        )


def _check_any(key: str, values: Sequence[Any]) -> tuple[Scalar, ...]:
    if not values:
        raise SparsefitError(f'filter on "{key}" lists no values', hint="give at least one value")
    if len(values) > MAX_ANY_VALUES:
        raise SparsefitError(f'filter on "{key}" lists {len(values):,} values', hint=f"list at most {MAX_ANY_VALUES:,}")
    for v in values:
        _check_scalar(key, v)
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else str for v in values}
    if len(kinds) > 1:
        raise SparsefitError(
            f'filter on "{key}" mixes value types {sorted(k.__name__ for k in kinds)}',
            hint="list values of one type only",
        )
    return tuple(values)


def filters_per_row(
    filters: Filter | Sequence[Filter | None] | None, n: int
) -> list[Filter | None]:
    """One filter per query row (``None`` where it excludes nothing) from one filter for all or a list.

    Example:
        >>> filters_per_row(Filter(), 2)
        [None, None]
    """
    if filters is None or isinstance(filters, Filter):
        f = None if filters is None or filters.is_empty else filters
        return [f] * n
    per_row = list(filters)
    if len(per_row) != n:
        raise SparsefitError(f"search_batch got {n} query rows but {len(per_row)} filters")
    for f in per_row:
        if f is not None and not isinstance(f, Filter):
            raise SparsefitError(
                f"search filters must be Filter objects, got {type(f).__name__}",
                hint="build them with parse_filter({...})",
            )
    return [None if f is None or f.is_empty else f for f in per_row]
