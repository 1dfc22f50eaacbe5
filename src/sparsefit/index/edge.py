"""Qdrant Edge engine: Qdrant's Rust engine in-process, persisted in one folder.

Layout: the folder *is* the collection (Edge's own files plus ``sparsefit_meta.json``, the
metadata blob, replaced atomically; a two-stage index adds its settings and ``sparsefit_vectors/``,
the copy of the full vectors its candidates are rescored from). Only one handle may have a folder
open at a time.

Example:
    >>> import tempfile, scipy.sparse as sp
    >>> folder = tempfile.mkdtemp()
    >>> with EdgeIndex(folder) as idx:
    ...     idx.upsert(["SKU-1"], sp.csr_matrix([[0, 2.0, 1.0]]))
    ...     idx.count()
    1
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import qdrant_edge as qe
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.files import write_atomic
from sparsefit.index.base import SparseIndex, check_modifier
from sparsefit.index.prepared import (
    CANDIDATE_VECTOR,
    DENSE_VECTOR,
    VECTOR_NAME,
    Modifier,
    PreparedPoint,
    PreparedQuery,
    RawHit,
    raw_hit,
    vector_names,
)
from sparsefit.index.bm25 import BM25_VECTOR
from sparsefit.index.edge_query import edge_boost, edge_filter, scoring
from sparsefit.index.ids import point_key
from sparsefit.index.payloads import ID_KEY, json_blob
from sparsefit.index.rescore import VectorStore
from sparsefit.index.two_stage import TwoStage

META_FILE = "sparsefit_meta.json"
TWO_STAGE_FILE = "sparsefit_two_stage.json"
VECTORS_DIR = "sparsefit_vectors"  # two-stage: the full vectors, rescored in numpy (rescore.py)
CONFIG_FILE = "edge_config.json"  # written by Qdrant Edge; marks a shard folder

@contextmanager
def engine_errors(action: str, folder: Path) -> Iterator[None]:
    """Turn Qdrant Edge errors, including Rust panics (BaseException), into SparsefitError."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, GeneratorExit, SparsefitError):
        raise
    except BaseException as e:  # pyo3 PanicException derives from BaseException
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "WouldBlock" in text:
            raise SparsefitError(
                f"index folder {folder} is already open in another process (or handle)",
                hint="stop the other program using it (e.g. a running server), close the "
                "other handle, or work on a copy of the folder",
            ) from e
        raise SparsefitError(
            f"Qdrant Edge could not {action} in {folder}: {text}",
            hint="if the folder was damaged, rebuild the index with recreate=True",
        ) from e


def is_edge_folder(folder: Path) -> bool:
    """True if ``folder`` holds a Qdrant Edge shard."""
    return (folder / CONFIG_FILE).is_file()


class EdgeIndex(SparseIndex):
    """A :class:`SparseIndex` on Qdrant Edge in the folder ``path``.

    Example:
        >>> import tempfile
        >>> EdgeIndex(tempfile.mkdtemp(), modifier="idf").engine
        'edge'
    """

    engine = "edge"
    _payload_schema: ClassVar[Mapping[str, Any]] = {
        "keyword": qe.PayloadSchemaType.Keyword,
        "integer": qe.PayloadSchemaType.Integer,
        "float": qe.PayloadSchemaType.Float,
        "bool": qe.PayloadSchemaType.Bool,
    }

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        recreate: bool = False,
        on_disk: bool = False,
        modifier: Modifier | None = None,
        two_stage: TwoStage | None = None,
        bm25: bool = False,
        dense_size: int | None = None,
    ) -> None:
        super().__init__()
        check_modifier(modifier)
        self.path = Path(path)
        self._vectors = VectorStore(self.path / VECTORS_DIR)
        if self.path.exists() and not self.path.is_dir():
            raise SparsefitError(f"index path {self.path} is a file, not a folder")
        if recreate and is_edge_folder(self.path):
            self._remove_shard()
        if is_edge_folder(self.path):
            self._open_two_stage(two_stage, str(self.path))
            self._shard = self._load(modifier)
        elif not create:
            raise SparsefitError(
                f"no index in {self.path}",
                hint="check the path, or build the index first",
            )
        else:
            self._shard = self._create(on_disk, modifier or "none", two_stage, bm25, dense_size)

    # ----- open / create

    def _load(self, modifier: Modifier | None) -> qe.EdgeShard:
        self._check_stored_modifier(modifier, f"index in {self.path}")
        with engine_errors("open the index", self.path):
            return qe.EdgeShard.load(str(self.path))

    def _create(self, on_disk: bool, modifier: Modifier, two_stage: TwoStage | None, bm25: bool,
                dense_size: int | None) -> qe.EdgeShard:
        if self.path.is_dir() and any(self.path.iterdir()):
            raise SparsefitError(
                f"{self.path} is not empty and holds no index",
                hint="choose a new or empty folder for the index",
            )
        memory = qe.Memory.Cold if on_disk else None
        params = qe.EdgeSparseVectorParams(
            modifier=qe.Modifier.Idf if modifier == "idf" else None, memory=memory
        )
        vectors = {name: params for name in vector_names(two_stage)}
        if bm25:  # Qdrant's BM25: term-frequency weights, IDF from the engine
            vectors[BM25_VECTOR] = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=memory)
        dense = {DENSE_VECTOR: qe.EdgeVectorParams(dense_size, qe.Distance.Cosine, memory=memory)} if dense_size else None
        config = qe.EdgeConfig(vectors=dense, sparse_vectors=vectors, payload_memory=memory)
        self.path.mkdir(parents=True, exist_ok=True)
        with engine_errors("create the index", self.path):
            shard = qe.EdgeShard.create(str(self.path), config)
        self._start_two_stage(two_stage)  # after the shard: a folder holding only its file would be no index
        return shard

    def _stored_two_stage(self) -> TwoStage | None:
        file = self.path / TWO_STAGE_FILE
        if not file.is_file():
            return None
        try:
            return TwoStage.from_json(json.loads(file.read_text(encoding="utf-8")))
        except ValueError as e:
            raise SparsefitError(f"two-stage settings are not valid JSON: {e}", file=file,
                                 hint="rebuild the index with recreate=True") from e

    def _store_two_stage(self, two_stage: TwoStage) -> None:
        write_atomic(self.path / TWO_STAGE_FILE, json.dumps(two_stage.to_json()))

    def _remove_shard(self) -> None:
        # Loading first takes the WAL lock, so we never delete a folder in use elsewhere.
        with engine_errors("open the index", self.path):
            qe.EdgeShard.load(str(self.path)).close()
        shutil.rmtree(self.path)

    @property
    def modifier(self) -> Modifier:
        """The sparse modifier the shard was created with: ``"none"`` or ``"idf"``."""
        params = self._sparse_config().get(VECTOR_NAME)
        if params is None:
            raise SparsefitError(
                f"{self.path / CONFIG_FILE} has no sparse vector named {VECTOR_NAME!r}",
                hint="this folder was not built by sparsefit; rebuild it with recreate=True",
            )
        return "idf" if str(params.get("modifier", "")).lower() == "idf" else "none"

    @property
    def has_bm25(self) -> bool:
        """True if the shard holds Qdrant BM25 vectors."""
        return BM25_VECTOR in self._sparse_config()

    @property
    def dense_size(self) -> int | None:
        """The size of the shard's dense vectors, None without them."""
        params = self._config("vectors").get(DENSE_VECTOR)
        return int(params["size"]) if isinstance(params, dict) and "size" in params else None

    def _sparse_config(self) -> dict[str, Any]:
        return self._config("sparse_vectors")

    def _config(self, key: str) -> dict[str, Any]:
        try:
            vectors = json.loads((self.path / CONFIG_FILE).read_text()).get(key) or {}
        except (OSError, ValueError, AttributeError) as e:
            raise SparsefitError(f"{self.path / CONFIG_FILE} cannot be read: {e}",
                                 hint="this folder was not built by sparsefit; rebuild it with recreate=True") from e
        return vectors if isinstance(vectors, dict) else {}

    # ----- writes

    def _write(self, points: list[PreparedPoint]) -> None:
        built = [qe.Point(p.id, _point_vectors(p), p.payload) for p in points]
        self._apply(qe.UpdateOperation.upsert_points(built), "write points")

    def _after_write(self) -> None:
        with engine_errors("flush", self.path):
            self._shard.flush()

    def _apply(self, operation: Any, action: str) -> None:
        with engine_errors(action, self.path):
            self._shard.update(operation)

    def _index_field(self, key: str, schema: Any) -> None:
        self._apply(qe.UpdateOperation.create_field_index(key, schema), "index a field")

    # ----- reads

    def _before_write(self, point_ids: list[int | str], product_ids: list[str], vectors: sp.csr_matrix) -> None:
        if self.two_stage is not None and self.modifier == "none":  # idf: only the engine knows the weights
            self._vectors.append([point_key(p) for p in point_ids], product_ids, vectors)

    def _query(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit]]:
        results: list[list[RawHit] | None] = [None] * len(queries)
        staged = [i for i, q in enumerate(queries) if q.candidate is not None]
        if staged and self._vectors.holds_rows():
            for i, hits in zip(staged, self._rescored([queries[i] for i in staged], with_payload)):
                results[i] = hits
        rest = [i for i, hits in enumerate(results) if hits is None]  # exact, or a candidate not in the copy
        if rest:
            for i, hits in zip(rest, self._engine_query([queries[i] for i in rest], with_payload)):
                results[i] = hits
        return [hits or [] for hits in results]

    def _rescored(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit] | None]:
        """Candidates from the engine, rescored from the vector copy; None where it lacks one.

        Every query has a candidate vector.
        """
        requests = [
            qe.QueryRequest(
                limit=q.candidates,
                query=qe.Query.Nearest(qe.SparseVector(*(q.candidate or ([], []))), using=CANDIDATE_VECTOR),
                filter=edge_filter(q.filter),
                with_payload=False,
                with_vector=False,
            )
            for q in queries
        ]
        out: list[list[RawHit] | None] = []
        for q, points in zip(queries, self._run(requests)):
            scored = self._vectors.rescore([p.id for p in points], q.indices, q.values)
            if scored is None:
                out.append(None)
                continue
            product_ids, scores = scored
            if len(scores) > q.limit:  # only the top q.limit scores and their ties need ordering by id
                keep = np.flatnonzero(scores >= np.partition(scores, -q.limit)[-q.limit])
                product_ids, scores = [product_ids[k] for k in keep], scores[keep]
            ranked = sorted(zip(product_ids, scores.tolist()), key=lambda h: (-h[1], h[0]))[: q.limit]
            out.append([(pid, score, {}) for pid, score in ranked])
        if with_payload:
            found = [pid for hits in out if hits for pid, _, _ in hits]
            payloads = dict(zip(found, self.retrieve(found)))
            out = [None if hits is None else [(pid, s, payloads[pid] or {}) for pid, s, _ in hits] for hits in out]
        return out

    def _engine_query(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit]]:
        selector = True if with_payload else qe.PayloadSelector.Include([ID_KEY])
        requests = []
        for q in queries:
            f = edge_filter(q.filter)
            prefetches, query, params = scoring(q, f)
            if q.boost is not None:  # the query's top products, rescored by the boost formula
                depth = max(q.boost.depth, q.limit)
                prefetches = [qe.Prefetch(limit=depth, prefetches=prefetches, query=query, params=params, filter=f)]
                query, params = edge_boost(q.boost), None
            requests.append(qe.QueryRequest(limit=q.limit, prefetches=prefetches, params=params, query=query, filter=f,
                                            with_payload=selector, with_vector=False))
        return [[raw_hit(p, with_payload) for p in points] for points in self._run(requests)]

    def _run(self, requests: list[qe.QueryRequest]) -> list[list[Any]]:
        with engine_errors("search", self.path):
            if len(requests) == 1:
                return [self._shard.query(requests[0])]
            return self._shard.query_batch(qe.QueryBatchRequest(requests))

    def _retrieve_vectors(self, point_ids: list[int | str]) -> list[Any]:
        with engine_errors("retrieve vectors", self.path):
            return self._shard.retrieve(point_ids, False, [VECTOR_NAME])

    def _retrieve(self, point_ids: list[int | str]) -> list[Any]:
        with engine_errors("retrieve points", self.path):
            return self._shard.retrieve(point_ids, True, False)  # the stub's keywords are wrong

    def count(self) -> int:
        """Number of points, with or without a vector."""
        self._check_open()
        with engine_errors("count points", self.path):
            return int(self._shard.count(qe.CountRequest(exact=True)))

    # ----- metadata

    def set_metadata(self, meta: Mapping[str, Any]) -> None:
        """Replace ``sparsefit_meta.json`` in the index folder atomically."""
        self._check_open()
        text = json.dumps(json_blob(meta), indent=2, sort_keys=True)
        write_atomic(self.path / META_FILE, text)

    def get_metadata(self) -> dict[str, Any]:
        """The metadata blob, ``{}`` if none was stored."""
        self._check_open()
        file = self.path / META_FILE
        if not file.exists():
            return {}
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as e:
            raise SparsefitError(
                f"index metadata is not valid JSON: {e}",
                file=file,
                hint="delete the file and rebuild the index",
            ) from e
        if not isinstance(meta, dict):
            raise SparsefitError("index metadata is not a JSON object", file=file)
        return meta

    def _close(self) -> None:
        with engine_errors("close the index", self.path):
            self._shard.flush()
            self._shard.close()


def _point_vectors(p: PreparedPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {name: qe.SparseVector(*vector) for name, vector in p.named_vectors().items()}
    if p.dense is not None:
        vectors[DENSE_VECTOR] = p.dense
    return vectors
