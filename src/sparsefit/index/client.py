"""qdrant-client engine: a Qdrant server or cluster by URL (local mode only for tests).

Metadata lives in the collection's own metadata (Qdrant >= 1.16) under the key ``"sparsefit"``,
so it is created, copied and deleted together with the collection and never shows up as a
point. Setting it reads it back and fails clearly on a server that drops it.

A new collection takes Qdrant's own sharding and replication (``shards``, ``replicas``,
``write_consistency``; None: the server's default) and ``on_disk`` storage; an existing one keeps
what it was created with. Upserts go out in batches, several at once, each retried with exponential
backoff on transient errors (``uploads.py``); every batch is acknowledged as written (``wait=True``).

Example:
    >>> import scipy.sparse as sp
    >>> with ClientIndex(location=":memory:") as idx:
    ...     idx.upsert(["7"], sp.csr_matrix([[0, 1.0]]))
    ...     idx.retrieve(["7", "8"])
    [{}, None]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from sparsefit.errors import SparsefitError
from sparsefit.index.base import SparseIndex, check_modifier
from sparsefit.index.prepared import (
    DENSE_VECTOR,
    VECTOR_NAME,
    Modifier,
    PreparedPoint,
    PreparedQuery,
    Progress,
    RawHit,
    raw_hit,
    vector_names,
)
from sparsefit.index.bm25 import BM25_VECTOR
from sparsefit.index.client_query import client_boost, client_filter, scoring
from sparsefit.index.location import check_sharding
from sparsefit.index.payloads import ID_KEY, json_blob
from sparsefit.index.two_stage import TwoStage, positive_int
from sparsefit.index.uploads import is_transient, upload

META_KEY = "sparsefit"
TWO_STAGE_KEY = "sparsefit_two_stage"


class ClientIndex(SparseIndex):
    """A :class:`SparseIndex` on a Qdrant collection reached through qdrant-client.

    Give ``url`` for a server or cluster; ``location=":memory:"`` or ``path`` select
    qdrant-client's pure-Python local mode (slow: tests only; it ignores shards and replicas).

    ``shards``, ``replicas`` and ``write_consistency`` are the new collection's ``shard_number``,
    ``replication_factor`` and ``write_consistency_factor`` (None: the server's default); ``on_disk``
    keeps its sparse index and payloads on disk. Upserts send ``upsert_batch_size`` points per request,
    ``upsert_parallel`` requests at once, each retried up to ``upsert_retries`` times on a transient
    error, waiting ``retry_backoff`` seconds, doubled each time; ``retried`` counts the retries.

    Example:
        >>> ClientIndex(location=":memory:", collection="demo").where
        'in-memory Qdrant (local mode)'
    """

    engine = "client"
    _payload_schema: ClassVar[Mapping[str, Any]] = {
        "keyword": qm.PayloadSchemaType.KEYWORD,
        "integer": qm.PayloadSchemaType.INTEGER,
        "float": qm.PayloadSchemaType.FLOAT,
        "bool": qm.PayloadSchemaType.BOOL,
    }

    def __init__(
        self,
        *,
        url: str | None = None,
        location: str | None = None,
        path: str | Path | None = None,
        collection: str = "catalog",
        api_key: str | None = None,
        create: bool = True,
        recreate: bool = False,
        on_disk: bool = False,
        modifier: Modifier | None = None,
        timeout: int | None = None,
        two_stage: TwoStage | None = None,
        shards: int | None = None,
        replicas: int | None = None,
        write_consistency: int | None = None,
        bm25: bool = False,
        dense_size: int | None = None,
        upsert_batch_size: int = 256,
        upsert_parallel: int = 4,
        upsert_retries: int = 5,
        retry_backoff: float = 0.5,
    ) -> None:
        super().__init__()
        check_modifier(modifier)
        self._sharding = check_sharding(shards, replicas, write_consistency)
        self.upsert_batch_size = positive_int("upsert_batch_size", upsert_batch_size)
        self.upsert_parallel = positive_int("upsert_parallel", upsert_parallel)
        if isinstance(upsert_retries, bool) or not isinstance(upsert_retries, int) or upsert_retries < 0:
            raise SparsefitError(f"upsert_retries must be a whole number of 0 or more, not {upsert_retries!r}")
        if not isinstance(retry_backoff, (int, float)) or not retry_backoff >= 0:
            raise SparsefitError(f"retry_backoff must be 0 or more seconds, not {retry_backoff!r}")
        self.upsert_retries = upsert_retries
        self.retry_backoff = float(retry_backoff)
        self.retried = 0  # transient upsert failures sent again, since the index was opened
        self._bm25: bool | None = None
        self._dense: tuple[int | None] | None = None
        self._retry_lock = threading.Lock()
        if sum(x is not None for x in (url, location, path)) != 1:
            raise SparsefitError("give exactly one of url, location or path for a Qdrant client")
        if not isinstance(collection, str) or not collection:
            raise SparsefitError("the collection name is empty", hint="pass collection='catalog'")
        self.collection = collection
        self.url = url
        self.local = url is None
        self.where = (
            f"Qdrant at {url}"
            if url is not None
            else f"local Qdrant folder {path}"
            if path is not None
            else "in-memory Qdrant (local mode)"
        )
        # local mode is plain Python, not made for threads: parallel batches reach it one at a time
        self._send_lock: AbstractContextManager[object] = threading.Lock() if self.local else nullcontext()
        self._client = self._connect(url, location, path, api_key, timeout)
        try:
            self._open_collection(create, recreate, on_disk, modifier, two_stage, bm25, dense_size)
        except BaseException:
            self._client.close()
            raise

    # ----- connection

    def _connect(
        self,
        url: str | None,
        location: str | None,
        path: str | Path | None,
        api_key: str | None,
        timeout: int | None,
    ) -> QdrantClient:
        with self._errors("connect"):
            if url is not None:
                return QdrantClient(
                    url=url, api_key=api_key, timeout=timeout, check_compatibility=False
                )
            if path is not None:
                return QdrantClient(path=str(path))
            return QdrantClient(location=location)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn qdrant-client failures into one-line SparsefitErrors naming the target."""
        try:
            yield
        except SparsefitError:
            raise
        except ResourceExhaustedResponse as e:
            raise SparsefitError(
                f"{self.where} is overloaded and could not {action}: HTTP 429 {e}",
                hint="try again later, or send fewer requests at once",
            ) from e
        except ResponseHandlingException as e:
            raise SparsefitError(
                f"cannot reach {self.where} to {action}: {e.source if e.source else e}",
                hint="check that the server is running and the URL (scheme, host, port) is right",
            ) from e
        except UnexpectedResponse as e:
            if e.status_code in (401, 403):
                raise SparsefitError(
                    f"{self.where} refused the API key (HTTP {e.status_code})",
                    hint="set the right key in SPARSEFIT_QDRANT_API_KEY",
                ) from e
            body = e.content.decode("utf-8", "replace")[:300] if e.content else e.reason_phrase
            raise SparsefitError(
                f"{self.where} could not {action}: HTTP {e.status_code} {body}"
            ) from e
        except RuntimeError as e:
            if "already accessed" in str(e):
                raise SparsefitError(
                    f"{self.where} is already open in another client",
                    hint="close the other client or use a Qdrant server",
                ) from e
            raise SparsefitError(f"{self.where} could not {action}: {e}") from e
        except (ValueError, TypeError, OSError) as e:
            raise SparsefitError(f"{self.where} could not {action}: {e}") from e

    def _open_collection(
        self,
        create: bool,
        recreate: bool,
        on_disk: bool,
        modifier: Modifier | None,
        two_stage: TwoStage | None,
        bm25: bool = False,
        dense_size: int | None = None,
    ) -> None:
        name = self.collection
        with self._errors("open the collection"):
            exists = self._client.collection_exists(name)
            if exists and recreate:
                self._client.delete_collection(name)
                exists = False
        if exists:
            self._check_stored_modifier(modifier, f'collection "{name}"')
            self._open_two_stage(two_stage, f'collection "{name}" of {self.where}')
        elif not create:
            raise SparsefitError(
                f'{self.where} has no collection "{name}"',
                hint="check the collection name, or build the index first",
            )
        else:
            self._create_collection(on_disk, modifier or "none", two_stage, bm25, dense_size)

    def _create_collection(self, on_disk: bool, modifier: Modifier, two_stage: TwoStage | None, bm25: bool,
                           dense_size: int | None = None) -> None:
        params = qm.SparseVectorParams(
            index=qm.SparseIndexParams(on_disk=True) if on_disk else None,  # the inverted index, memory-mapped
            modifier=qm.Modifier.IDF if modifier == "idf" else None,
        )
        vectors = {name: params for name in vector_names(two_stage)}
        if bm25:  # Qdrant's BM25: term-frequency weights, IDF from the engine
            vectors[BM25_VECTOR] = qm.SparseVectorParams(index=params.index, modifier=qm.Modifier.IDF)
        with self._errors("create the collection"):
            self._client.create_collection(
                self.collection,
                vectors_config={DENSE_VECTOR: qm.VectorParams(size=dense_size, distance=qm.Distance.COSINE,
                                                               on_disk=True if on_disk else None)} if dense_size else {},
                sparse_vectors_config=vectors,
                on_disk_payload=True if on_disk else None,  # None: the server's default
                **self._sharding,
            )
        self._start_two_stage(two_stage)

    def _stored_two_stage(self) -> TwoStage | None:
        stored = self._collection_metadata().get(TWO_STAGE_KEY)
        return TwoStage.from_json(stored) if stored is not None else None

    def _store_two_stage(self, two_stage: TwoStage) -> None:
        with self._errors("store the two-stage settings"):
            self._client.update_collection(self.collection, metadata={TWO_STAGE_KEY: two_stage.to_json()})
        stored = self._stored_two_stage()
        if stored != two_stage or stored.thresholds != two_stage.thresholds:
            raise SparsefitError(
                f"{self.where} did not keep the two-stage settings",
                hint="upgrade the Qdrant server to 1.16 or newer",
            )

    @property
    def modifier(self) -> Modifier:
        """The sparse modifier of the collection: ``"none"`` or ``"idf"``."""
        params = self._sparse_config().get(VECTOR_NAME)
        if params is None:
            raise SparsefitError(
                f'collection "{self.collection}" in {self.where} has no sparse vector '
                f'"{VECTOR_NAME}"',
                hint="it was not built by sparsefit; pick another collection or recreate it",
            )
        return "idf" if params.modifier == qm.Modifier.IDF else "none"

    @property
    def has_bm25(self) -> bool:
        """True if the collection holds Qdrant BM25 vectors."""
        if self._bm25 is None:  # asked once: a collection's vectors never change
            self._bm25 = BM25_VECTOR in self._sparse_config()
        return self._bm25

    @property
    def dense_size(self) -> int | None:
        """The size of the collection's dense vectors, None without them."""
        if self._dense is None:  # asked once: a collection's vectors never change
            with self._errors("read the collection"):
                vectors = self._client.get_collection(self.collection).config.params.vectors
            params = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else None
            self._dense = (int(params.size),) if params is not None else (None,)
        return self._dense[0]

    def _sparse_config(self) -> dict[str, Any]:
        with self._errors("read the collection"):
            info = self._client.get_collection(self.collection)
        return dict(info.config.params.sparse_vectors or {})

    # ----- writes

    def _write(self, points: list[PreparedPoint]) -> None:
        self._write_batches([points], None)

    def _write_batches(self, batches: Iterable[list[PreparedPoint]], progress: Progress | None) -> None:
        """Send the batches ``upsert_parallel`` at once, retrying transient errors with backoff."""
        try:
            upload(batches, self._send, parallel=self.upsert_parallel, retries=self.upsert_retries,
                   backoff=self.retry_backoff, progress=progress, on_retry=self._count_retry)
        except Exception as e:
            tries = f" (tried {self.upsert_retries + 1} times)" if is_transient(e) and self.upsert_retries else ""
            with self._errors(f"write points{tries}"):
                raise

    def _count_retry(self, error: BaseException) -> None:
        with self._retry_lock:
            self.retried += 1

    def _send(self, points: list[PreparedPoint]) -> None:
        """One upsert request; returns once the server has written it (``wait=True``)."""
        built = [qm.PointStruct(id=p.id, vector=_point_vectors(p), payload=p.payload) for p in points]
        with self._send_lock:
            self._client.upsert(self.collection, points=built, wait=True)

    def _index_field(self, key: str, schema: Any) -> None:
        if self.local:  # local mode has no payload indexes
            return
        with self._errors("index a field"):
            self._client.create_payload_index(
                self.collection, key, field_schema=schema, wait=True
            )

    # ----- reads

    def _query(self, queries: list[PreparedQuery], with_payload: bool) -> list[list[RawHit]]:
        selector: bool | list[str] = True if with_payload else [ID_KEY]
        requests = []
        for q in queries:
            if q.feedback is not None and self.local:
                raise SparsefitError("qdrant-client's local mode has no relevance feedback on sparse vectors",
                                     hint="use Qdrant Edge (an index folder) or a Qdrant server")
            f = client_filter(q.filter)
            parts = scoring(q, f, self.local)
            if q.boost is not None:  # the query's top products, rescored by the boost formula
                parts = {"prefetch": qm.Prefetch(**parts, limit=max(q.boost.depth, q.limit), filter=f),
                         "query": client_boost(q.boost)}
            requests.append(qm.QueryRequest(**parts, limit=q.limit, filter=f, with_payload=selector, with_vector=False))
        with self._errors("search"):
            responses = self._client.query_batch_points(self.collection, requests=requests)
        return [[raw_hit(p, with_payload) for p in r.points] for r in responses]

    def _retrieve_vectors(self, point_ids: list[int | str]) -> list[Any]:
        with self._errors("retrieve vectors"):
            return self._client.retrieve(self.collection, ids=point_ids, with_payload=False, with_vectors=[VECTOR_NAME])

    def _retrieve(self, point_ids: list[int | str]) -> list[Any]:
        with self._errors("retrieve points"):
            return self._client.retrieve(
                self.collection, ids=point_ids, with_payload=True, with_vectors=False
            )

    def count(self) -> int:
        """Number of points, with or without a vector."""
        self._check_open()
        with self._errors("count points"):
            return int(self._client.count(self.collection, exact=True).count)

    # ----- metadata

    def set_metadata(self, meta: Mapping[str, Any]) -> None:
        """Replace the blob stored in the collection metadata under ``"sparsefit"``."""
        self._check_open()
        blob = json_blob(meta)
        stored = {META_KEY: blob}
        if self.two_stage is not None:  # kept even by a server that replaces metadata instead of merging it
            stored[TWO_STAGE_KEY] = self.two_stage.to_json()
        with self._errors("store metadata"):
            self._client.update_collection(self.collection, metadata=stored)
        if self.get_metadata() != blob:
            raise SparsefitError(
                f"{self.where} did not keep the collection metadata",
                hint="upgrade the Qdrant server to 1.16 or newer",
            )

    def get_metadata(self) -> dict[str, Any]:
        """The blob stored with :meth:`set_metadata`, ``{}`` if none."""
        self._check_open()
        meta = self._collection_metadata().get(META_KEY)
        return dict(meta) if isinstance(meta, dict) else {}

    def _collection_metadata(self) -> dict[str, Any]:
        with self._errors("read metadata"):
            info = self._client.get_collection(self.collection)
        return dict(getattr(info.config, "metadata", None) or {})

    def _close(self) -> None:
        with self._errors("close"):
            self._client.close()


def _point_vectors(p: PreparedPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {name: qm.SparseVector(indices=i, values=v) for name, (i, v) in p.named_vectors().items()}
    if p.dense is not None:
        vectors[DENSE_VECTOR] = p.dense
    return vectors
