"""The engine interface: :class:`SparseIndex`, and everything both engines do the same way.

Two engines implement :class:`SparseIndex`: Qdrant Edge in-process (``edge.py``) and
qdrant-client for a server or cluster (``client.py``). The public methods live here and check
their inputs before an engine sees them; an engine supplies only the hooks that talk to it
(``_write``, ``_query``, ``_retrieve``, ``_index_field``, its stored settings). What the checks
and hooks are built from has its own module: the filter language (``filters.py``), the product
id <-> point id mapping (``ids.py``), vector validation (``vectors.py``), payload cleaning
(``payloads.py``), two-stage search (``two_stage.py``), what engines get (``prepared.py``: points, queries,
hits) and the named vectors beside the model's: Qdrant's BM25 (``bm25.py``), hybrid fusion (``fusion.py``),
relevance feedback (``feedback.py``) and boosts (``boost.py``).

Decisions shared by both engines:

* A document whose vector has no non-zero entry is stored as a point *without* a vector: it is
  counted, retrievable and filterable, but never returned by a search. An all-zero query
  returns no hits without asking the engine.
* Results are ordered by score descending, then product id ascending. Ties at the ``limit``
  boundary are resolved by asking the engine for more, so engines return the same ids.
* An existing index keeps the modifier and two-stage settings it was built with: opening it
  with other ones is an error, opening it with none accepts what is there.

Example:
    >>> check_modifier("idf") is None
    True
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.index.bm25 import BM25_VECTOR
from sparsefit.index.boost import Boost
from sparsefit.index.filters import Filter, check_key, filters_per_row
from sparsefit.index.feedback import FeedbackItems, FeedbackStrategy, check_items
from sparsefit.index.fusion import Fusion
from sparsefit.index.ids import point_id, point_number, unique_point_ids
from sparsefit.index.payloads import clean_payload, split_payload
from sparsefit.index.prepared import (
    DENSE_VECTOR,
    PAYLOAD_INDEX_KINDS,
    VECTOR_NAME,
    Hit,
    Modifier,
    PayloadIndexKind,
    PreparedPoint,
    PreparedQuery,
    Progress,
    RawHit,
)
from sparsefit.index.two_stage import (
    TwoStage,
    candidate_vectors,
    check_two_stage,
    heaviest_terms,
    positive_int,
    posting_thresholds,
)
from sparsefit.index.vectors import DenseRows, SparseRows, clean_csr, rows_of, sparse_rows



# --------------------------------------------------------------------------- the interface


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
    upsert_batch_size: int = 1024  # points per engine call when upsert() is given no batch_size
    _payload_schema: ClassVar[Mapping[str, Any]] = {}  # payload index kind -> the engine's schema type

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
        batch_size: int | None = None,
        progress: Progress | None = None,
        bm25: sp.csr_matrix | None = None,
        dense: np.ndarray | None = None,
    ) -> None:
        """Insert or replace one point per product id; ``progress(n)`` gets each batch's size.

        ``bm25``: the products' Qdrant BM25 vectors (:class:`~sparsefit.index.bm25.Bm25Model`), one row each,
        for an index created with ``bm25=True``. ``dense``: one embedding row per product, for an index created
        with ``dense_size``.

        ``batch_size`` points go to the engine per call (default: the engine's ``upsert_batch_size``).
        When it returns, every point is stored (a server acknowledged each batch as written).
        With two-stage search, the first upsert fixes the candidate thresholds from its vectors:
        upsert the whole catalog in that call.
        """
        self._check_open()
        ids = list(product_ids)
        matrix = clean_csr(vectors)
        rows = rows_of(matrix)
        if len(rows) != len(ids):
            raise SparsefitError(
                f"upsert got {len(ids)} product ids but {len(rows)} vector rows",
                hint="pass one vector row per product id",
            )
        if payloads is not None and len(payloads) != len(ids):
            raise SparsefitError(f"upsert got {len(ids)} product ids but {len(payloads)} payloads")
        bm25_rows = self._bm25_rows(bm25, len(ids), "upsert")
        dense_rows = self._dense_rows(dense, len(ids), "upsert")
        batch_size = positive_int("batch_size", self.upsert_batch_size if batch_size is None else batch_size)
        pids = unique_point_ids(ids)
        candidates = self._candidate_rows(matrix)  # after every check: the first upsert fixes the thresholds
        self._before_write(pids, ids, matrix)
        batches = (  # prepared one batch at a time, as the engine takes them
            [
                PreparedPoint(
                    pids[i],
                    *rows.row(i),
                    clean_payload(payloads[i] if payloads is not None else None, ids[i]),
                    candidates.row(i) if candidates is not None else None,
                    bm25_rows.row(i) if bm25_rows is not None else None,
                    dense_rows.row(i)[1] if dense_rows is not None else None,
                )
                for i in range(start, min(start + batch_size, len(ids)))
            ]
            for start in range(0, len(ids), batch_size)
        )
        self._write_batches(batches, progress)
        self._after_write()

    def search(
        self,
        vector: sp.csr_matrix | None,
        limit: int = 10,
        filter: Filter | None = None,
        with_payload: bool = True,
        *,
        exact: bool = False,
        bm25: sp.csr_matrix | None = None,
        fusion: Fusion | None = None,
        dense: np.ndarray | None = None,
        feedback: FeedbackItems | None = None,
        strategy: FeedbackStrategy | None = None,
        boost: Boost | None = None,
    ) -> list[Hit]:
        """Top ``limit`` products by dot product with a one-row sparse ``vector`` (see :meth:`search_batch`).

        ``exact=True`` skips the candidate stage of a two-stage index (no effect otherwise).
        """
        for given in (vector, bm25, dense):
            if given is not None and len(getattr(given, "shape", ())) == 2 and given.shape[0] != 1:
                raise SparsefitError(f"search takes one query row, got {given.shape[0]}", hint="use search_batch")
        return self.search_batch(vector, limit, filter, with_payload, exact=exact, bm25=bm25, fusion=fusion, dense=dense,
                                 feedback=None if feedback is None else [feedback], strategy=strategy, boost=boost)[0]

    def search_batch(
        self,
        vectors: sp.csr_matrix | None,
        limit: int = 10,
        filters: Filter | Sequence[Filter | None] | None = None,
        with_payload: bool = False,
        batch_size: int = 256,
        progress: Progress | None = None,
        *,
        exact: bool = False,
        bm25: sp.csr_matrix | None = None,
        fusion: Fusion | None = None,
        dense: np.ndarray | None = None,
        feedback: Sequence[FeedbackItems | None] | None = None,
        strategy: FeedbackStrategy | None = None,
        boost: Boost | None = None,
    ) -> list[list[Hit]]:
        """Top ``limit`` products for each query row; one filter for all rows or one per row.

        ``vectors`` alone searches the learned sparse vectors; ``bm25`` alone (the queries' Qdrant BM25 rows)
        searches BM25, ``dense`` alone (query embeddings) the dense vectors; two or three of them make one
        hybrid Qdrant query per row, its legs (in that order) fused in the engine as ``fusion`` says
        (default: RRF, equal weights). All-zero rows get no hits. Without ``with_payload``
        each ``Hit.payload`` is ``{}``. ``exact=True`` skips the candidate stage of a two-stage index
        (a hybrid query's learned leg always searches exactly).

        ``feedback``: per row, (product id, score) items on earlier hits (clicked = 1, skipped = 0), or None;
        the row's learned leg becomes Qdrant's relevance-feedback query with ``strategy``'s coefficients
        (:mod:`sparsefit.index.feedback`). Rows without feedback search as they would without it.
        ``boost``: the query's top ``boost.depth`` products rescored by ``score · (1 + Σ weight · field)``
        (:mod:`sparsefit.index.boost`), in the engine.
        """
        self._check_open()
        limit = positive_int("search limit", limit)
        batch_size = positive_int("batch_size", batch_size)
        if vectors is None and bm25 is None and dense is None:
            raise SparsefitError("search got no query vectors", hint="pass the learned query vectors, bm25=, dense=, or several")
        rows = sparse_rows(vectors, what="query vectors") if vectors is not None else None
        count = (len(rows) if rows is not None else bm25.shape[0] if sp.issparse(bm25)
                 else len(dense) if dense is not None and hasattr(dense, "__len__") else 0)
        bm25_rows = self._bm25_rows(bm25, count, "search") if bm25 is not None else None
        dense_rows = self._dense_rows(dense, count, "search")
        if fusion is not None and not isinstance(fusion, Fusion):
            raise SparsefitError(f"fusion must be a Fusion, got {type(fusion).__name__}")
        legs = [(name, given) for name, given in ((VECTOR_NAME, rows), (BM25_VECTOR, bm25_rows), (DENSE_VECTOR, dense_rows))
                if given is not None]
        if len(legs) > 1 and fusion is not None and len(fusion.weights) != len(legs):
            raise SparsefitError(f"the fusion has {len(fusion.weights)} weights for {len(legs)} legs")
        per_row = filters_per_row(filters, count)
        rated = self._feedback_rows(feedback, count, rows is not None)
        if any(rated):
            strategy = strategy or FeedbackStrategy()
            exact = True  # feedback rescores the plain query's candidates; no candidate stage
        if boost is not None and not isinstance(boost, Boost):
            raise SparsefitError(f"boost must be a Boost, got {type(boost).__name__}", hint="use Boost.parse({...})")
        exact = exact or boost is not None
        out: list[list[Hit]] = []
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            out.extend(self._search_rows(legs, range(start, stop), per_row, limit, with_payload, exact, fusion,
                                         rated, strategy, boost))
            if progress is not None:
                progress(stop - start)
        return out

    def retrieve(self, product_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        """Payloads (without ``"_id"``) of the given products, ``None`` for missing ones."""
        self._check_open()
        ids = [point_id(pid) for pid in product_ids]
        found = {point_number(r.id): split_payload(r.payload, r.id)[1] for r in self._retrieve(ids)}
        return [found.get(point_number(i)) for i in ids]

    @abc.abstractmethod
    def count(self) -> int:
        """Number of points (products) in the collection, with or without a vector."""

    def create_payload_index(self, key: str, kind: PayloadIndexKind) -> None:
        """Index payload field ``key`` as ``kind`` (keyword, integer, float or bool) to speed up filters on it."""
        self._check_open()
        self._check_payload_kind(key, kind)
        self._index_field(key, self._payload_schema[kind])

    @property
    @abc.abstractmethod
    def modifier(self) -> Modifier:
        """The sparse modifier the index was built with: ``"none"`` or ``"idf"``."""

    @property
    @abc.abstractmethod
    def has_bm25(self) -> bool:
        """True if the index holds Qdrant BM25 vectors (created with ``bm25=True``)."""

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

    def _write_batches(self, batches: Iterable[list[PreparedPoint]], progress: Progress | None) -> None:
        """Write the batches of one upsert, one after the other, calling ``progress(n)`` after each.

        An engine may send them otherwise (a server: several at once, retried); it returns once all are written.
        """
        for points in batches:
            self._write(points)
            if progress is not None:
                progress(len(points))

    def _before_write(self, point_ids: list[int | str], product_ids: list[str], vectors: sp.csr_matrix) -> None:
        """Called once per upsert, after every check and before the first batch is written."""

    def _after_write(self) -> None:
        """Called once after an upsert finished (e.g. to flush)."""

    @abc.abstractmethod
    def _query(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit]]:
        """Run non-empty queries as one batch; hits in engine order."""

    @abc.abstractmethod
    def _retrieve(self, point_ids: list[int | str]) -> Iterable[Any]:
        """The stored points (with ``.id`` and ``.payload``) among ``point_ids``, in any order."""

    @abc.abstractmethod
    def _retrieve_vectors(self, point_ids: list[int | str]) -> Iterable[Any]:
        """The stored points among ``point_ids`` with their learned vector (``.id``, ``.vector[VECTOR_NAME]``)."""

    @abc.abstractmethod
    def _index_field(self, key: str, schema: Any) -> None:
        """Create the engine's payload index on ``key``; ``schema`` comes from ``_payload_schema``."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the engine."""

    @abc.abstractmethod
    def _stored_two_stage(self) -> TwoStage | None:
        """The two-stage settings stored with an existing index (``None``: exact search only)."""

    @abc.abstractmethod
    def _store_two_stage(self, two_stage: TwoStage) -> None:
        """Persist the two-stage settings and thresholds with the index."""

    # ----- shared helpers

    def _check_open(self) -> None:
        if self._closed:
            raise SparsefitError("the index is closed", hint="open it again with open_index()")

    def _check_stored_modifier(self, wanted: Modifier | None, where: str) -> None:
        """Stop when an existing index was built with another modifier than ``wanted`` (``None``: any)."""
        stored = self.modifier
        if wanted is not None and wanted != stored:
            raise SparsefitError(
                f'{where} was built with modifier "{stored}", not "{wanted}"',
                hint="open it without a modifier, or rebuild it with recreate=True",
            )

    def _open_two_stage(self, wanted: TwoStage | None, where: str) -> None:
        """Take the two-stage settings of an existing index; stop if they are not ``wanted``."""
        self.two_stage = self._stored_two_stage()
        check_two_stage(self.two_stage, wanted, where)

    def _start_two_stage(self, two_stage: TwoStage | None) -> None:
        """Store the two-stage settings of an index the engine has just created."""
        if two_stage is not None:
            self._store_two_stage(two_stage)
        self.two_stage = two_stage

    @property
    @abc.abstractmethod
    def dense_size(self) -> int | None:
        """The dimension of the index's dense vectors (created with ``dense_size``), None without them."""

    def _dense_rows(self, dense: np.ndarray | None, count: int, action: str) -> DenseRows | None:
        """Validated embedding rows, one per product or query, for an index that has dense vectors."""
        if dense is None:
            return None
        size = self.dense_size
        if size is None:
            raise SparsefitError("this index has no dense vectors", hint="rebuild it with a dense model (--dense)")
        return DenseRows.of(dense, count, size, action)

    def _bm25_rows(self, bm25: sp.csr_matrix | None, count: int, action: str) -> SparseRows | None:
        """Validated BM25 rows, one per product or query, for an index that has BM25 vectors."""
        if bm25 is None:
            return None
        if not self.has_bm25:
            raise SparsefitError(
                "this index has no BM25 vectors (it was built before sparsefit indexed Qdrant's BM25 beside the model)",
                hint="rebuild it (sparsefit index, or train again) to search with BM25 or hybrid retrieval",
            )
        rows = sparse_rows(bm25, what="BM25 vectors")
        if len(rows) != count:
            raise SparsefitError(f"{action} got {count} rows but {len(rows)} BM25 rows", hint="pass one BM25 row per row")
        return rows

    def _feedback_rows(self, feedback: Sequence[FeedbackItems | None] | None, count: int, learned: bool) -> list:
        """Per row, the rated products' learned vectors with their scores (None: no feedback for that row)."""
        if feedback is None:
            return [None] * count
        if isinstance(feedback, (str, bytes)) or len(feedback) != count:
            raise SparsefitError(f"feedback must be one list (or None) per query row: {count} rows")
        items = [None if f is None else check_items(f) for f in feedback]
        if not learned and any(items):
            raise SparsefitError("relevance feedback needs the model's vectors", hint="use sparse or hybrid retrieval")
        wanted = sorted({pid for row in items if row for pid, _ in row})
        stored = self._learned_vectors([point_id(pid) for pid in wanted]) if wanted else {}
        missing = [pid for pid in wanted if point_number(point_id(pid)) not in stored]
        if missing:
            raise SparsefitError(f"feedback names {len(missing)} product(s) not in the index: {', '.join(missing[:5])}",
                                 hint="send feedback on product ids that search returned")
        out = []
        for row in items:
            rated = [(*stored[point_number(point_id(pid))], score) for pid, score in row or ()]
            out.append(tuple(r for r in rated if r[0]) or None)  # a product without a vector cannot pull or push
        return out

    def _learned_vectors(self, point_ids: list[int | str]) -> dict[Any, tuple[list[int], list[float]]]:
        """The stored learned vectors of ``point_ids`` by point number (an empty vector for a point without one)."""
        out = {}
        for record in self._retrieve_vectors(point_ids):
            vector = (record.vector or {}).get(VECTOR_NAME)
            out[point_number(record.id)] = (list(vector.indices), [float(v) for v in vector.values]) if vector else ([], [])
        return out

    def _search_rows(
        self,
        legs: list[tuple[str, SparseRows]],
        which: range,
        filters: list[Filter | None],
        limit: int,
        with_payload: bool,
        exact: bool = False,
        fusion: Fusion | None = None,
        feedback: list | None = None,
        strategy: FeedbackStrategy | None = None,
        boost: Boost | None = None,
    ) -> list[list[Hit]]:
        results: list[list[Hit]] = [[] for _ in which]
        todo = [k for k, i in enumerate(which) if any(rows.row(i)[1] for _, rows in legs)]
        fetch = limit + 1
        two_stage = None if exact or legs[0][0] != VECTOR_NAME else self.two_stage
        while todo:
            if len(legs) == 1:
                name, rows = legs[0]
                queries = [self._prepared_query(rows.row(which[k]), filters[which[k]], fetch, two_stage, name)
                           for k in todo]
            else:
                queries = [PreparedQuery([], [], filters[which[k]], fetch,
                                         legs=tuple((name, *rows.row(which[k])) for name, rows in legs),
                                         fusion=fusion or Fusion(weights=(1.0,) * len(legs)),
                                         depth=max((fusion or Fusion()).prefetch, limit))
                           for k in todo]
            if feedback is not None and strategy is not None:
                queries = [replace(q, feedback=feedback[which[k]], strategy=strategy,
                                   depth=q.depth or max(strategy.depth, limit)) if feedback[which[k]] else q
                           for k, q in zip(todo, queries)]
            if boost is not None:
                queries = [replace(q, boost=boost) for q in queries]
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
        row: tuple[list[int], list[float]], f: Filter | None, fetch: int, two_stage: TwoStage | None,
        using: str = VECTOR_NAME,
    ) -> PreparedQuery:
        if two_stage is None or two_stage.thresholds is None:
            return PreparedQuery(*row, f, fetch, using=using)
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
        return rows_of(candidate_vectors(matrix, self.two_stage.thresholds or {}))

    def _check_payload_kind(self, key: str, kind: str) -> None:
        check_key(key)
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


def check_modifier(modifier: Any) -> None:
    """Reject anything but ``None``, ``"none"`` and ``"idf"``.

    Example:
        >>> check_modifier("idf")
    """
    if modifier not in (None, "none", "idf"):
        raise SparsefitError(f"unknown modifier {modifier!r}", hint='use "none" or "idf"')
