"""Engine-neutral sparse index: shared types, the filter language, point ids and validation.

Two engines implement :class:`SparseIndex`: Qdrant Edge in-process (``edge.py``) and
qdrant-client for a server or cluster (``client.py``). Everything that must behave the same on
both lives here: vector validation, payload cleaning, point-id mapping, result ordering.

Decisions shared by both engines:

* Product ids are strings. :func:`point_id` maps them to Qdrant point ids; the original id is
  stored in the payload under the reserved key ``"_id"`` and never shown in ``Hit.payload``.
* A document whose vector has no non-zero entry is stored as a point *without* a vector: it is
  counted, retrievable and filterable, but never returned by a search. An all-zero query
  returns no hits without asking the engine.
* Results are ordered by score descending, then product id ascending. Ties at the ``limit``
  boundary are resolved by asking the engine for more, so engines return the same ids.
* Search is exact unless the index was created with :class:`TwoStage`: then each point also
  holds a *candidate vector* (its postings among the heaviest ``posting_cap`` of each term),
  the query's heaviest terms find candidates there, and those are rescored exactly with the full
  vectors: by the server in one engine call (Qdrant's prefetch), by Qdrant Edge from a copy of
  the vectors beside the index (``rescore.py``, far faster). Latency is then bounded by the cap,
  not by the catalog size; ``exact=True`` still searches exactly.

Example:
    >>> point_id("100001"), point_id("00123") != 123
    (100001, True)
    >>> parse_filter({"brand": "Acme", "price": {"lt": 50}}).must[1]
    Range(key='price', gt=None, gte=None, lt=50, lte=None)
"""

from __future__ import annotations

import abc
import json
import math
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError

VECTOR_NAME = "sparse"
CANDIDATE_VECTOR = "sparse_candidates"  # two-stage search: capped posting lists
ID_KEY = "_id"
MAX_INT_ID = 2**63
MAX_DIMENSION = 2**32
# Fixed forever: changing it would orphan every stored text id.
ID_NAMESPACE = uuid.UUID("6b1f3c52-0d7e-5a3e-9c1a-5f0e2b7d8a41")

PayloadIndexKind = Literal["keyword", "integer", "float", "bool"]
PAYLOAD_INDEX_KINDS = ("keyword", "integer", "float", "bool")
Modifier = Literal["none", "idf"]

Progress = Callable[[int], None]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Hit:
    """One search result: the product id, its score and its payload (without ``"_id"``)."""

    product_id: str
    score: float
    payload: dict[str, Any]


# --------------------------------------------------------------------------- filters

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
        _check_key(self.key)
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
        _check_key(self.key)
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


def _check_key(key: Any) -> None:
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


# --------------------------------------------------------------------------- point ids


def point_id(product_id: str) -> int | str:
    """Map a product id to a Qdrant point id.

    A canonical non-negative decimal below 2**63 becomes that integer; anything else becomes
    a UUID5 string, so ``"00123"`` and ``"123"`` stay different points.

    Example:
        >>> point_id("42")
        42
        >>> point_id("SKU-7") == point_id("SKU-7") and isinstance(point_id("SKU-7"), str)
        True
    """
    if not isinstance(product_id, str):
        raise SparsefitError(
            f"product id {product_id!r} is a {type(product_id).__name__}, not a string",
            hint="convert product ids with str() before indexing",
        )
    if not product_id:
        raise SparsefitError("a product id is empty", hint="give every product a non-empty id")
    if product_id.isascii() and product_id.isdigit():
        n = int(product_id)
        if str(n) == product_id and n < MAX_INT_ID:
            return n
    return str(uuid.uuid5(ID_NAMESPACE, product_id))


def point_key(pid: int | str | uuid.UUID) -> str:
    """A comparable text key for a point id as any engine returns it (int, str or UUID)."""
    return str(pid)


# --------------------------------------------------------------------------- vectors


@dataclass(frozen=True)
class SparseRows:
    """Validated CSR rows, each handed out as plain lists ready for an engine.

    The arrays stay numpy (a catalog's rows as Python lists would take gigabytes at 1M products).
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[list[int], list[float]]:
        """Indices and values of row ``i`` (both empty for an all-zero row)."""
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.indices[a:b].tolist(), self.values[a:b].tolist()


def sparse_rows(vectors: Any, *, what: str = "vectors") -> SparseRows:
    """Validate a sparse matrix and return its rows: unique sorted indices, finite values.

    Duplicate entries are summed and explicit zeros dropped.

    Example:
        >>> import scipy.sparse as sp
        >>> r = sparse_rows(sp.csr_matrix(([1.0, 2.0, 3.0], [5, 1, 5], [0, 3]), shape=(1, 9)))
        >>> r.row(0)
        ([1, 5], [2.0, 4.0])
    """
    rows = _canonical_rows(vectors)
    return rows if rows is not None else _rows_of(clean_csr(vectors, what=what))


def _canonical_rows(vectors: Any) -> SparseRows | None:
    """The rows of a CSR matrix that needs no cleaning, read without scipy's checks (~10x faster
    for one query row); ``None`` for anything else, which :func:`clean_csr` then checks and cleans."""
    if not sp.issparse(vectors) or vectors.format != "csr" or vectors.ndim != 2 or vectors.shape[1] > MAX_DIMENSION:
        return None
    indptr, indices, data = (np.asarray(a) for a in (vectors.indptr, vectors.indices, vectors.data))
    if len(indptr) != vectors.shape[0] + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices):
        return None
    steps = np.diff(indices.astype(np.int64))
    starts = indptr[1:-1]
    steps[starts[(starts > 0) & (starts < len(indices))] - 1] = 1  # a new row may start lower
    if (
        (np.diff(indptr) < 0).any()
        or (len(indices) and (indices.min() < 0 or indices.max() >= vectors.shape[1]))
        or (steps <= 0).any()
        or not np.isfinite(data).all()
        or (data == 0).any()
    ):
        return None
    return SparseRows(indptr.astype(np.int64), indices.astype(np.int64), data.astype(np.float64))


def _rows_of(m: sp.csr_matrix) -> SparseRows:
    """Rows of a matrix already cleaned by :func:`clean_csr` (or a subset of one)."""
    return SparseRows(m.indptr, m.indices, m.data.astype(np.float64, copy=False))


def clean_csr(vectors: Any, *, what: str = "vectors") -> sp.csr_matrix:
    """A float64 copy of ``vectors`` with sorted, unique indices and no explicit zeros; checked.

    Example:
        >>> clean_csr(sp.csr_matrix([[0.0, 2.0]])).nnz
        1
    """
    m = _as_csr(vectors, what)
    if m.shape[1] > MAX_DIMENSION:
        raise SparsefitError(
            f"{what} have {m.shape[1]} dimensions; Qdrant sparse indices stop at 2**32",
        )
    if m.data.size and not np.isfinite(m.data).all():
        first = np.flatnonzero(~np.isfinite(m.data))[0]
        row = int(np.searchsorted(m.indptr, first, side="right")) - 1
        raise SparsefitError(
            f"{what} row {row} holds NaN or infinite values",
            hint="check the encoder output (e.g. NaN weights after training)",
        )
    m.sum_duplicates()  # also sorts indices
    m.eliminate_zeros()
    return m


def _as_csr(vectors: Any, what: str) -> sp.csr_matrix:
    if not sp.issparse(vectors):
        raise SparsefitError(
            f"{what} must be a scipy sparse matrix, got {type(vectors).__name__}",
            hint="pass scipy.sparse.csr_matrix(...)",
        )
    if vectors.ndim != 2:
        raise SparsefitError(f"{what} must be 2-D (one row per document), got {vectors.ndim}-D")
    try:
        m = sp.csr_matrix(vectors, dtype=np.float64, copy=True)
        m.check_format(full_check=True)
    except (ValueError, TypeError, IndexError) as e:
        raise SparsefitError(
            f"{what} are not a valid sparse matrix: {e}",
            hint="rebuild it with scipy.sparse.csr_matrix((data, indices, indptr), shape=...)",
        ) from e
    return m


# --------------------------------------------------------------------------- payloads


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
    if ID_KEY in payload:
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


# --------------------------------------------------------------------------- two-stage search


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
            _positive_int(f"two-stage {name}", getattr(self, name))

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


# --------------------------------------------------------------------------- engine interface


@dataclass(frozen=True)
class PreparedPoint:
    """A point as every engine needs it: id, vector parts (maybe empty), payload with ``_id``.

    ``candidate`` is the two-stage candidate vector (indices, values), None without two-stage.
    """

    id: int | str
    indices: list[int]
    values: list[float]
    payload: dict[str, Any]
    candidate: tuple[list[int], list[float]] | None = None


@dataclass(frozen=True)
class PreparedQuery:
    """A non-empty query vector, its filter and the number of results wanted from the engine."""

    indices: list[int]
    values: list[float]
    filter: Filter | None
    limit: int
    candidate: tuple[list[int], list[float]] | None = None  # two-stage: terms that find candidates
    candidates: int = 0  # two-stage: how many candidates are rescored


RawHit = tuple[str, float, dict[str, Any]]  # product id, score, payload without "_id"


class SparseIndex(abc.ABC):
    """A collection of sparse vectors with payloads, keyed by product id (string).

    Example:
        >>> import scipy.sparse as sp
        >>> from sparsefit.index import open_index
        >>> with open_index(local_client=True) as idx:
        ...     idx.upsert(["a", "b"], sp.csr_matrix([[1.0, 0, 2.0], [0, 1.0, 1.0]]))
        ...     [h.product_id for h in idx.search(sp.csr_matrix([[0, 0, 1.0]]))]
        ['a', 'b']
    """

    engine: str = "?"

    def __init__(self) -> None:
        self._closed = False
        self.two_stage: TwoStage | None = None  # set by engines whose index has candidate vectors

    # ----- public API

    def upsert(
        self,
        product_ids: Sequence[str],
        vectors: sp.csr_matrix,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int = 1024,
        progress: Progress | None = None,
    ) -> None:
        """Insert or replace one point per product id; ``progress(n)`` gets each batch's size.

        With two-stage search, the first upsert fixes the candidate thresholds from its vectors:
        upsert the whole catalog in that call.
        """
        self._check_open()
        ids = list(product_ids)
        matrix = clean_csr(vectors)
        rows = _rows_of(matrix)
        if len(rows) != len(ids):
            raise SparsefitError(
                f"upsert got {len(ids)} product ids but {len(rows)} vector rows",
                hint="pass one vector row per product id",
            )
        if payloads is not None and len(payloads) != len(ids):
            raise SparsefitError(f"upsert got {len(ids)} product ids but {len(payloads)} payloads")
        batch_size = _positive_int("batch_size", batch_size)
        pids = _unique_point_ids(ids)
        candidates = self._candidate_rows(matrix)  # after every check: the first upsert fixes the thresholds
        self._before_write(pids, ids, matrix)
        for start in range(0, len(ids), batch_size):
            stop = min(start + batch_size, len(ids))
            points = [
                PreparedPoint(
                    pids[i],
                    *rows.row(i),
                    clean_payload(payloads[i] if payloads is not None else None, ids[i]),
                    candidates.row(i) if candidates is not None else None,
                )
                for i in range(start, stop)
            ]
            self._write(points)
            if progress is not None:
                progress(stop - start)
        self._after_write()

    def search(
        self,
        vector: sp.csr_matrix,
        limit: int = 10,
        filter: Filter | None = None,
        with_payload: bool = True,
        *,
        exact: bool = False,
    ) -> list[Hit]:
        """Top ``limit`` products by dot product with a one-row sparse ``vector``.

        ``exact=True`` skips the candidate stage of a two-stage index (no effect otherwise).
        """
        if sp.issparse(vector) and vector.shape[0] != 1:
            raise SparsefitError(
                f"search takes one query row, got {vector.shape[0]}", hint="use search_batch"
            )
        return self.search_batch(vector, limit, filter, with_payload, exact=exact)[0]

    def search_batch(
        self,
        vectors: sp.csr_matrix,
        limit: int = 10,
        filters: Filter | Sequence[Filter | None] | None = None,
        with_payload: bool = False,
        batch_size: int = 256,
        progress: Progress | None = None,
        *,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """Top ``limit`` products for each query row; one filter for all rows or one per row.

        All-zero rows get no hits. Without ``with_payload`` each ``Hit.payload`` is ``{}``.
        ``exact=True`` skips the candidate stage of a two-stage index.
        """
        self._check_open()
        limit = _positive_int("search limit", limit)
        batch_size = _positive_int("batch_size", batch_size)
        rows = sparse_rows(vectors, what="query vectors")
        per_row = _filters_per_row(filters, len(rows))
        out: list[list[Hit]] = []
        for start in range(0, len(rows), batch_size):
            stop = min(start + batch_size, len(rows))
            out.extend(self._search_rows(rows, range(start, stop), per_row, limit, with_payload, exact))
            if progress is not None:
                progress(stop - start)
        return out

    @abc.abstractmethod
    def retrieve(self, product_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """Payloads (without ``"_id"``) of the given products, ``None`` for missing ones."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of points (products) in the collection."""

    @abc.abstractmethod
    def create_payload_index(self, key: str, kind: PayloadIndexKind) -> None:
        """Index a payload field to speed up filters on it."""

    @abc.abstractmethod
    def set_metadata(self, meta: Mapping[str, Any]) -> None:
        """Replace the small JSON metadata blob stored with the collection."""

    @abc.abstractmethod
    def get_metadata(self) -> dict[str, Any]:
        """The metadata blob stored with :meth:`set_metadata` (``{}`` if none)."""

    def close(self) -> None:
        """Flush and release the engine; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> SparseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- engine hooks

    @abc.abstractmethod
    def _write(self, points: list[PreparedPoint]) -> None:
        """Upsert one batch of points in one engine call."""

    def _before_write(self, point_ids: list[int | str], product_ids: list[str], vectors: sp.csr_matrix) -> None:
        """Called once per upsert, after every check and before the first batch is written."""

    def _after_write(self) -> None:
        """Called once after an upsert finished (e.g. to flush)."""

    @abc.abstractmethod
    def _query(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit]]:
        """Run non-empty queries as one batch; hits in engine order."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the engine."""

    @abc.abstractmethod
    def _store_two_stage(self, two_stage: TwoStage) -> None:
        """Persist the two-stage settings and thresholds with the index."""

    # ----- shared helpers

    def _check_open(self) -> None:
        if self._closed:
            raise SparsefitError("the index is closed", hint="open it again with open_index()")

    def _search_rows(
        self,
        rows: SparseRows,
        which: range,
        filters: list[Filter | None],
        limit: int,
        with_payload: bool,
        exact: bool = False,
    ) -> list[list[Hit]]:
        results: list[list[Hit]] = [[] for _ in which]
        todo = [k for k, i in enumerate(which) if rows.row(i)[0]]
        fetch = limit + 1
        two_stage = None if exact else self.two_stage
        while todo:
            queries = [self._prepared_query(rows.row(which[k]), filters[which[k]], fetch, two_stage) for k in todo]
            raw = self._query(queries, with_payload)
            again = []
            for k, hits in zip(todo, raw):
                top, ambiguous = _top(hits, limit, fetch)
                results[k] = top
                if ambiguous:
                    again.append(k)
            todo, fetch = again, fetch * 4
        return results

    @staticmethod
    def _prepared_query(
        row: tuple[list[int], list[float]], f: Filter | None, fetch: int, two_stage: TwoStage | None
    ) -> PreparedQuery:
        if two_stage is None or two_stage.thresholds is None:
            return PreparedQuery(*row, f, fetch)
        return PreparedQuery(*row, f, fetch, heaviest_terms(*row, two_stage.query_terms),
                             max(two_stage.candidates, fetch))

    def _candidate_rows(self, matrix: sp.csr_matrix) -> SparseRows | None:
        """The candidate vectors of a two-stage index (fixing its thresholds on the first upsert)."""
        if self.two_stage is None:
            return None
        if self.two_stage.thresholds is None and matrix.shape[0]:
            fixed = replace(self.two_stage, thresholds=posting_thresholds(matrix, self.two_stage.posting_cap))
            self._store_two_stage(fixed)
            self.two_stage = fixed
        return _rows_of(candidate_vectors(matrix, self.two_stage.thresholds or {}))

    def _check_payload_kind(self, key: str, kind: str) -> None:
        _check_key(key)
        if kind not in PAYLOAD_INDEX_KINDS:
            raise SparsefitError(
                f'unknown payload index kind "{kind}" for "{key}"',
                hint=f"use one of {', '.join(PAYLOAD_INDEX_KINDS)}",
            )


def _top(hits: list[RawHit], limit: int, fetched: int) -> tuple[list[Hit], bool]:
    """Order by score desc, product id asc; flag a tie across the limit that needs more hits."""
    ordered = sorted(hits, key=lambda h: (-h[1], h[0]))
    ambiguous = len(hits) >= fetched and ordered[limit - 1][1] == ordered[-1][1]
    return [Hit(pid, float(score), payload) for pid, score, payload in ordered[:limit]], ambiguous


def split_payload(
    payload: Mapping[str, Any] | None, pid: int | str | uuid.UUID
) -> tuple[str, dict[str, Any]]:
    """Product id and visible payload from a stored payload (falls back to the point id)."""
    payload = dict(payload or {})
    product_id = payload.pop(ID_KEY, None)
    return (product_id if isinstance(product_id, str) else point_key(pid)), payload


def _filters_per_row(
    filters: Filter | Sequence[Filter | None] | None, n: int
) -> list[Filter | None]:
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


def _unique_point_ids(ids: list[str]) -> list[int | str]:
    seen: dict[str, int] = {}
    for i, pid in enumerate(ids):
        if pid in seen:
            raise SparsefitError(
                f"product id {pid!r} appears twice (positions {seen[pid]} and {i})",
                hint="give each product one row",
            )
        seen[pid] = i
    return [point_id(pid) for pid in ids]


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


def check_modifier(modifier: Any) -> None:
    """Reject anything but ``None``, ``"none"`` and ``"idf"``.

    Example:
        >>> check_modifier("idf")
    """
    if modifier not in (None, "none", "idf"):
        raise SparsefitError(f"unknown modifier {modifier!r}", hint='use "none" or "idf"')


def _positive_int(name: str, value: Any) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        n = 0
    if isinstance(value, bool) or n < 1:
        raise SparsefitError(f"{name} must be a positive integer, got {value!r}")
    return n
