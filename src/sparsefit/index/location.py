"""Where an index lives: one value instead of five arguments threaded through every stage.

A Qdrant Edge folder (``path``) or a collection on a Qdrant server or cluster (``url``,
``collection``, ``api_key``), and the search mode it is built for (``two_stage``). Training,
evaluation, indexing and serving all take an :class:`IndexLocation`; only :meth:`open` turns
it into an engine.

How a new index is stored: ``on_disk`` (its sparse index and payloads on disk, for either
engine) and, on a server, Qdrant's sharding and replication: ``shards``, ``replicas`` and
``write_consistency`` (None: the server's default; a folder refuses them). They say where and
how an index is kept, not what is in it: an existing index keeps what it was created with, and
changing them does not rebuild it.

Example:
    >>> import tempfile
    >>> location = IndexLocation(path=tempfile.mkdtemp())
    >>> location.child("splade-tiny").path.name
    'splade-tiny'
    >>> IndexLocation(url="http://qdrant:6333", collection="shop").child("base").collection
    'shop-base'
    >>> with location.open() as index:
    ...     index.count()
    0
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from sparsefit.errors import SparsefitError
from sparsefit.index.base import Modifier, SparseIndex
from sparsefit.index.two_stage import TwoStage, positive_int


@dataclass(frozen=True)
class IndexLocation:
    """A Qdrant Edge folder or a server collection, and the search mode its index is built for."""

    path: Path | None = None
    url: str | None = None
    collection: str = "catalog"
    api_key: str | None = field(default=None, repr=False)  # never printed
    two_stage: TwoStage | None = None
    shards: int | None = None  # a new collection's shard_number
    replicas: int | None = None  # its replication_factor: copies of each shard on different nodes
    write_consistency: int | None = None  # its write_consistency_factor: replicas that confirm each write
    on_disk: bool = False  # a new index keeps its sparse index and payloads on disk

    def __post_init__(self) -> None:
        if (self.path is None) == (self.url is None):
            raise SparsefitError(
                "an index location needs a folder (Qdrant Edge) or a Qdrant server URL, and not both",
                hint="give --qdrant-url for a server, or leave it out for Qdrant Edge in the run folder",
            )
        sharding = {"--qdrant-shards": self.shards, "--qdrant-replicas": self.replicas,
                    "--qdrant-write-consistency": self.write_consistency}
        given = [flag for flag, value in sharding.items() if value is not None]
        if self.path is not None and given:
            raise SparsefitError(
                f"{', '.join(given)} shard or replicate a collection on a Qdrant server or cluster; "
                "a Qdrant Edge folder is one local shard",
                hint="give --qdrant-url too, or leave them out",
            )
        check_sharding(self.shards, self.replicas, self.write_consistency)
        if self.path is not None and not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))

    @property
    def remote(self) -> bool:
        """True for a Qdrant server or cluster."""
        return self.url is not None

    def child(self, name: str) -> IndexLocation:
        """The location of one of several indexes kept side by side (one per evaluated model):
        a sub-folder for Edge, ``<collection>-<name>`` on a server."""
        if self.url is not None:
            return replace(self, collection=f"{self.collection}-{name}")
        assert self.path is not None
        return replace(self, path=self.path / name)

    def exists(self) -> bool:
        """Whether there may be an index here to reopen (a server is asked when the index is opened)."""
        return self.url is not None or (self.path is not None and self.path.is_dir())

    def describe(self) -> str:
        """Where, in words (no API key)."""
        return f"collection {self.collection!r} at {self.url}" if self.url else f"Qdrant Edge folder {self.path}"

    def open(
        self,
        *,
        create: bool = True,
        recreate: bool = False,
        modifier: Modifier | None = None,
        timeout: int | None = None,
        bm25: bool = True,
        dense_size: int | None = None,
    ) -> SparseIndex:
        """Open the index here (``create``: create it when missing). ``recreate`` empties it and builds it for
        ``two_stage`` (and, unless ``bm25=False``, with Qdrant's BM25 vector beside the model's); a reopened
        index keeps the mode it was built with (its metadata tells)."""
        from sparsefit.index import open_index

        return open_index(
            path=self.path, url=self.url, collection=self.collection, api_key=self.api_key,
            create=create, recreate=recreate, modifier=modifier, timeout=timeout,
            two_stage=self.two_stage if recreate else None, on_disk=self.on_disk,
            shards=self.shards, replicas=self.replicas, write_consistency=self.write_consistency,
            bm25=bm25, dense_size=dense_size,
        )


def check_sharding(shards: int | None, replicas: int | None, write_consistency: int | None) -> dict[str, int]:
    """The sharding and replication settings of a new collection, as qdrant-client names them (None: left out).

    Example:
        >>> check_sharding(6, 2, None)
        {'shard_number': 6, 'replication_factor': 2}
    """
    given = {"shards": shards, "replicas": replicas, "write_consistency": write_consistency}
    for name, value in given.items():
        if value is not None:
            positive_int(name, value)
    if replicas is not None and write_consistency is not None and write_consistency > replicas:
        raise SparsefitError(
            f"write consistency {write_consistency} is more than the {replicas} replicas of each shard",
            hint="a write can only be confirmed by as many replicas as there are: lower the write consistency",
        )
    names = {"shards": "shard_number", "replicas": "replication_factor", "write_consistency": "write_consistency_factor"}
    return {names[name]: value for name, value in given.items() if value is not None}
