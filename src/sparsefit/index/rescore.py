"""Exact rescoring of two-stage candidates from a copy of the full vectors beside a Qdrant Edge index.

Qdrant Edge rescores a prefetch's candidates (``exact=True``) by reading and decoding each stored
vector on its own: 0.6-1.0 ms for 50 candidates at 1M points, a quarter of a two-stage search.
The same dot products over plain CSR arrays take about 0.1 ms in numpy, so a two-stage Edge
index keeps its full vectors a second time, in ``sparsefit_vectors/`` inside the index folder:

* each upsert call writes one chunk folder (``.npy`` arrays: CSR rows, point keys, product ids),
  under a temporary name first and renamed when complete, *before* the engine write;
* a later chunk's row for a point replaces an earlier one (upsert replaces, as in the engine);
* a candidate the chunks do not hold (an index built before this store, a crash between the two
  writes) makes that query fall back to the engine's own rescoring, never to a missing score.

Example:
    >>> import tempfile, scipy.sparse as sp
    >>> store = VectorStore(Path(tempfile.mkdtemp()) / "vectors")
    >>> store.append(["1", "2"], ["1", "2"], sp.csr_matrix([[1.0, 0, 2.0], [0, 3.0, 0]], dtype="float32"))
    >>> pids, scores = store.rescore([2, 1], [0, 2], [1.0, 1.0])
    >>> pids, scores.tolist()
    (['2', '1'], [0.0, 3.0])
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.files import atomic_folder
from sparsefit.index.ids import PointId, point_number

ARRAYS = ("indptr", "indices", "values", "keys", "product_ids")


@dataclass(frozen=True)
class _Rows:
    """All chunks as one set of CSR rows, with each point's (latest) row."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    product_ids: np.ndarray
    row_of: dict[int, int]  # point number -> row
    dimensions: int  # highest stored term + 1


class VectorStore:
    """Full sparse vectors of an index's points, kept as memory-mapped CSR chunks in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._rows: _Rows | None = None
        self._lock = threading.Lock()

    def holds_rows(self) -> bool:
        """True when some vectors were stored (read once, and again after each append)."""
        return bool(self._load().row_of)

    def append(self, point_keys: Sequence[str], product_ids: Sequence[str], matrix: sp.csr_matrix) -> None:
        """Write one chunk: row ``i`` of ``matrix`` is point ``point_keys[i]`` (``ids.point_key`` of its id)."""
        chunks = self._chunks()
        number = int(chunks[-1].name) + 1 if chunks else 1
        arrays = {
            "indptr": matrix.indptr.astype(np.int64),
            "indices": matrix.indices.astype(np.uint32),
            "values": matrix.data.astype(np.float32),
            "keys": np.asarray(list(point_keys), dtype=str),
            "product_ids": np.asarray(list(product_ids), dtype=str),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_folder(self.folder / f"{number:06d}") as partial:  # a chunk is there whole or not at all
            for name, array in arrays.items():
                np.save(partial / f"{name}.npy", array, allow_pickle=False)
        with self._lock:
            self._rows = None  # read again, with the new chunk, at the next search

    def rescore(
        self, point_ids: Sequence[PointId], indices: Sequence[int], values: Sequence[float]
    ) -> tuple[list[str], np.ndarray] | None:
        """Product ids and exact dot products of the given points with a query (``indices`` sorted).

        ``None`` when a point is not in the store: the caller must rescore another way.
        """
        rows = self._load()
        row = rows.row_of.get
        found = [row(p) if type(p) is int else row(point_number(p)) for p in point_ids]  # ints: most ids
        if None in found:
            return None
        which = np.asarray(found, dtype=np.int64)
        starts = rows.indptr[which]
        lengths = rows.indptr[which + 1] - starts
        firsts = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - firsts, lengths) + np.arange(int(lengths.sum()))
        query = np.zeros(rows.dimensions, dtype=np.float32)  # the query as a dense lookup table
        terms = np.asarray(indices, dtype=np.int64)
        inside = terms < rows.dimensions  # terms no stored vector has add nothing
        query[terms[inside]] = np.asarray(values, dtype=np.float32)[inside]
        products = query[rows.indices[positions]] * rows.values[positions]
        if lengths.all():  # no empty row: one sum per run of positions
            scores = np.add.reduceat(products, firsts, dtype=np.float64) if len(products) else np.zeros(0)
        else:
            scores = np.bincount(np.repeat(np.arange(len(which)), lengths), weights=products, minlength=len(which))
        return rows.product_ids[which].tolist(), scores.astype(np.float32)  # as the engine scores

    def _chunks(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.isdigit())

    def _load(self) -> _Rows:
        with self._lock:
            if self._rows is None:
                self._rows = self._read()
            return self._rows

    def _read(self) -> _Rows:
        parts = []
        for chunk in self._chunks():
            try:
                # plain ndarray views of the maps: numpy.memmap's own indexing costs ~15 us a call
                parts.append({n: np.load(chunk / f"{n}.npy", mmap_mode="r", allow_pickle=False).view(np.ndarray) for n in ARRAYS})
            except (OSError, ValueError) as e:
                raise SparsefitError(
                    f"the index's vector copy in {chunk} is damaged: {e}",
                    hint="rebuild the index with recreate=True",
                ) from e
        if not parts:
            return _Rows(np.zeros(1, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros(0, str), {}, 0)
        if len(parts) == 1:
            merged = parts[0]
        else:  # several upserts: one set of rows (the store of one catalog upsert is one chunk)
            offsets = np.cumsum([0] + [len(p["indices"]) for p in parts[:-1]])
            merged = {
                "indptr": np.concatenate([[0]] + [p["indptr"][1:] + o for p, o in zip(parts, offsets)]),
                **{n: np.concatenate([p[n] for p in parts]) for n in ARRAYS[1:]},
            }
        numbers = [point_number(k) for k in merged["keys"].tolist()]  # the keys point_key wrote
        row_of = dict(zip(numbers, range(len(numbers))))  # later rows win
        dimensions = int(merged["indices"].max()) + 1 if len(merged["indices"]) else 0
        return _Rows(merged["indptr"], merged["indices"], merged["values"], merged["product_ids"], row_of, dimensions)
