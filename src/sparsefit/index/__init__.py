"""Sparse vector indexes on Qdrant: Qdrant Edge in a folder, or a server/cluster by URL.

Example:
    >>> import tempfile, scipy.sparse as sp
    >>> from sparsefit.index import open_index, parse_filter
    >>> with open_index(path=tempfile.mkdtemp()) as idx:
    ...     idx.upsert(["1", "SKU-2"], sp.csr_matrix([[1.0, 0], [0.5, 1.0]]),
    ...                [{"brand": "Acme"}, {"brand": "Bolt"}])
    ...     [h.product_id for h in idx.search(sp.csr_matrix([[1.0, 0]]),
    ...                                       filter=parse_filter({"brand": "Bolt"}))]
    ['SKU-2']
"""

from __future__ import annotations

from pathlib import Path

from sparsefit.errors import SparsefitError
from sparsefit.index.base import Hit, Modifier, SparseIndex
from sparsefit.index.bm25 import Bm25Model
from sparsefit.index.boost import Boost
from sparsefit.index.filters import Filter, Match, Range, parse_filter
from sparsefit.index.feedback import FeedbackStrategy
from sparsefit.index.fusion import Fusion
from sparsefit.index.ids import point_id
from sparsefit.index.location import IndexLocation
from sparsefit.index.two_stage import TwoStage

__all__ = [
    "Bm25Model",
    "Boost",
    "FeedbackStrategy",
    "Filter",
    "Fusion",
    "Hit",
    "IndexLocation",
    "Match",
    "Range",
    "SparseIndex",
    "TwoStage",
    "open_index",
    "parse_filter",
    "point_id",
]


def open_index(
    *,
    path: str | Path | None = None,
    url: str | None = None,
    collection: str = "catalog",
    api_key: str | None = None,
    create: bool = True,
    recreate: bool = False,
    on_disk: bool = False,
    local_client: bool = False,
    modifier: Modifier | None = None,
    timeout: int | None = None,
    two_stage: TwoStage | None = None,
    shards: int | None = None,
    replicas: int | None = None,
    write_consistency: int | None = None,
    bm25: bool = False,
    dense_size: int | None = None,
) -> SparseIndex:
    """Open (or create) a sparse index.

    * ``path`` alone: Qdrant Edge in that folder (the folder is the collection;
      ``collection`` is not used).
    * ``url``: a Qdrant server or cluster, collection ``collection``, optional ``api_key``.
    * ``local_client=True``: qdrant-client's local mode, in ``path`` or in memory (tests only).

    ``modifier`` is ``"none"`` or ``"idf"`` for a new index; for an existing one it is checked
    (``None`` accepts what is there). ``two_stage`` likewise: a new index gets candidate vectors
    for two-stage search (see :class:`TwoStage`); an existing one must have been built with them.
    ``bm25=True`` gives a new index a second sparse vector, ``"bm25"``, for Qdrant's BM25 (IDF modifier; see
    :mod:`sparsefit.index.bm25`); an existing index has it or not (:attr:`SparseIndex.has_bm25`).
    ``dense_size=N`` adds a dense vector ``"dense"`` of N dimensions (cosine) to a new index.
    ``on_disk`` keeps a new index's sparse index and payloads on disk. ``shards``, ``replicas`` and
    ``write_consistency`` shard and replicate a new collection on a server (None: the server's
    default); a Qdrant Edge folder is one local shard and refuses them.

    Example:
        >>> idx = open_index(local_client=True, collection="demo")
        >>> idx.count()
        0
        >>> idx.close()
    """
    if url is not None and path is not None:
        raise SparsefitError(
            "both an index folder and a Qdrant URL were given",
            hint="use a folder for Qdrant Edge or a URL for a server, not both",
        )
    sharding = {"shards": shards, "replicas": replicas, "write_consistency": write_consistency}
    if url is None and not local_client and any(v is not None for v in sharding.values()):
        given = ", ".join(name for name, v in sharding.items() if v is not None)
        raise SparsefitError(
            f"{given} apply to a collection on a Qdrant server or cluster, not to a Qdrant Edge folder",
            hint="give a Qdrant URL (--qdrant-url) to shard or replicate the index, or leave them out",
        )
    if local_client:
        if url is not None:
            raise SparsefitError("local_client=True takes a path or nothing, not a URL")
        from sparsefit.index.client import ClientIndex

        return ClientIndex(
            path=path,
            location=":memory:" if path is None else None,
            collection=collection,
            create=create,
            recreate=recreate,
            on_disk=on_disk,
            modifier=modifier,
            two_stage=two_stage,
            bm25=bm25,
            dense_size=dense_size,
            **sharding,
        )
    if url is not None:
        from sparsefit.index.client import ClientIndex

        return ClientIndex(
            url=url,
            collection=collection,
            api_key=api_key,
            create=create,
            recreate=recreate,
            on_disk=on_disk,
            modifier=modifier,
            timeout=timeout,
            two_stage=two_stage,
            bm25=bm25,
            dense_size=dense_size,
            **sharding,
        )
    if path is None:
        raise SparsefitError(
            "no index location given",
            hint="give a folder (Qdrant Edge) or a Qdrant server URL",
        )
    from sparsefit.index.edge import EdgeIndex

    return EdgeIndex(
        path, create=create, recreate=recreate, on_disk=on_disk, modifier=modifier, two_stage=two_stage, bm25=bm25,
        dense_size=dense_size,
    )
