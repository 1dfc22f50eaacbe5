"""Indexing a catalog of any size for production (``sparsefit index``): a chunk at a time, resumable.

:func:`~sparsefit.indexing.build_index` loads the whole catalog, encodes it into one matrix and
upserts it in one call: fine for the catalogs a model is trained on, not for millions of products.
Here the catalog file is read a chunk at a time (:mod:`sparsefit.data.stream`), each chunk's products
are encoded, upserted and dropped (chunk n is upserted on a second thread while chunk n+1 is encoded),
so memory holds two chunks at most (plus 8 bytes a product: the ids seen
so far, as 64-bit hashes, to catch an id repeated across chunks), never the catalog's vectors nor
its payloads, whatever its size. The engine's own index is all that grows.

Columns are decided from the first chunk with the rules and messages of
:func:`~sparsefit.data.load_catalog`; every chunk is validated as a whole file would be, and an id
repeated in a later chunk is an error naming both rows (or skipped with ``on_invalid="skip"``).

Resumable: after each upserted chunk the index's metadata (``sparsefit_meta.json`` in an Edge folder,
the collection's metadata on a server) records what the index is being built from (the model's
fingerprint, the catalog file's path, size, modification time and the hash of its first MiB, the
reading options) and how many rows are done, written atomically. Run the same call again after a crash
and it goes on after the last finished chunk (point ids derive from product ids, so a chunk upserted
in part before the crash is simply written again); with another model, catalog or options it starts
over, and says why. When done, the metadata is what :func:`~sparsefit.indexing.catalog_index` writes
(model fingerprint, catalog and payload fingerprints, ``complete``, payload keys), so ``sparsefit
serve`` and ``search`` take the index as one of their own.

Example:
    >>> from sparsefit.index import IndexLocation
    >>> from sparsefit.models import load_encoder
    >>> report = stream_index(load_encoder("splade-tiny"), "examples/catalog.csv",
    ...                       IndexLocation(path="index"), show_progress=False)    # doctest: +SKIP
    >>> report.products                                                            # doctest: +SKIP
    400
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from sparsefit.data.benchmark_formats import catalog_file
from sparsefit.data.catalog import (
    Catalog,
    CatalogColumns,
    catalog_columns,
    catalog_of,
    check_mode,
    no_usable_products,
    repeated_id,
)
from sparsefit.data.readers import _format_of as format_of
from sparsefit.data.stream import TableStream, stream_table
from sparsefit.data.table import Table
from sparsefit.defaults import ENCODE_BATCH_SIZE, INDEX_CHUNK_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.index import Bm25Model, IndexLocation, SparseIndex
from sparsefit.index.boost import payload_types
from sparsefit.indexing import (
    INDEX_FORMAT,
    PayloadDigest,
    complete_metadata,
    index_identity,
)
from sparsefit.models import Encoder
from sparsefit.one_ahead import OneAhead
from sparsefit.progress import progress_bar
from sparsefit.run import RunFolder, exported

DEFAULT_CHUNK_SIZE = INDEX_CHUNK_SIZE
BUILD_FORMAT = 2  # 2: Qdrant's BM25 beside the model's vectors. Bump when what a build records changes: an unfinished index of another format starts over
PROGRESS_KEY = "indexing"  # metadata of an unfinished index: what it is built from and how far it got
BUILT_FROM_KEY = "built_from"  # metadata of a finished one: what it was built from
HEAD_BYTES = 1024**2  # the catalog file's first MiB is hashed into its identity

Notify = Callable[[str], None]


@dataclass
class IndexingReport:
    """What :func:`stream_index` did."""

    location: str
    products: int = 0  # products in the index
    rows: int = 0  # records read from the catalog file (products plus skipped rows)
    resumed_products: int = 0  # products already indexed by an earlier, interrupted call
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out (on_invalid="skip")
    seconds: dict[str, float] = field(default_factory=dict)  # read, encode, index, total
    up_to_date: bool = False  # the index was already complete for this model and catalog: nothing done
    started_over: str | None = None  # why an existing index was replaced
    type_notes: list[str] = field(default_factory=list)

    @property
    def indexed_now(self) -> int:
        """Products encoded and upserted by this call."""
        return 0 if self.up_to_date else self.products - self.resumed_products

    @property
    def products_per_second(self) -> float:
        return self.indexed_now / self.seconds["total"] if self.seconds.get("total") else 0.0


def stream_index(
    encoder: Encoder,
    catalog: str | Path,
    location: IndexLocation,
    *,
    id_field: str | None = None,
    text_fields: list[str] | str | None = None,
    template: str | None = None,
    on_invalid: Literal["error", "skip"] = "error",
    encoding: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = ENCODE_BATCH_SIZE,
    show_progress: bool = True,
    notify: Notify | None = None,
    after_chunk: Callable[[int, int], None] | None = None,
) -> IndexingReport:
    """Index the catalog file ``catalog`` with ``encoder`` at ``location``, a chunk of ``chunk_size`` rows at
    a time, going on from where an interrupted call with the same model, file and options stopped.

    ``notify`` gets the lines worth telling a user (resuming, starting over and why); ``after_chunk(n,
    products)`` is called once chunk ``n`` (0-based) is upserted and recorded, on the storing thread (tests
    interrupt there; what it raises is raised here before chunk n+1 is stored).
    """
    check_mode(on_invalid)
    if location.two_stage is not None:
        raise SparsefitError("`sparsefit index` builds indexes for exact search only (two-stage search fixes its "
                             "candidate thresholds from the whole catalog in one upsert)",
                             hint="leave out --search-posting-cap")
    path = catalog_file(Path(catalog))  # a BEIR folder: its corpus.jsonl
    format_of(path)  # a missing file, a folder, an unknown type: said before anything is opened
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise SparsefitError(f"the chunk size must be a whole number of rows (1 or more), not {chunk_size!r}",
                             hint="pass e.g. --chunk-size 4096")
    say = notify or (lambda line: None)
    began = time.perf_counter()
    if isinstance(text_fields, str):
        text_fields = [f.strip() for f in text_fields.split(",") if f.strip()]
    build = {
        "format": BUILD_FORMAT, "model": encoder.fingerprint(), "max_seq_length": _max_seq_length(encoder),
        "source": source_identity(path),
        "reading": {"id_field": id_field, "text_fields": text_fields or None, "template": template,
                    "on_invalid": on_invalid, "encoding": encoding},
    }
    report = IndexingReport(location=location.describe())
    index = location.open()
    try:
        meta = index.get_metadata()
        progress = meta.get(PROGRESS_KEY) if not meta.get("complete") else None
        if meta.get("complete") and meta.get(BUILT_FROM_KEY) == build and index.count() == meta.get("products"):
            report.products = report.resumed_products = int(meta["products"])
            report.up_to_date, report.seconds = True, {"total": time.perf_counter() - began}
            return report
        done_rows, start_over = 0, None
        if isinstance(progress, dict) and progress.get("build") == build:
            done_rows, report.resumed_products = int(progress["rows"]), int(progress["products"])
            if int(progress["chunk_size"]) != chunk_size:
                say(f"Going on in chunks of {int(progress['chunk_size']):,} rows, the size this index was started with "
                    f"(not {chunk_size:,}).")
                chunk_size = int(progress["chunk_size"])
            say(f"Resuming: {report.resumed_products:,} products ({done_rows:,} rows) of {path} are already in "
                f"{report.location}; going on after them.")
        else:
            start_over = _why_not_resumed(meta, build, index) or ""
        with stream_table(path, chunk_size=chunk_size, encoding=encoding) as stream:
            began_reading = time.perf_counter()
            chunks = iter(stream)
            first = next(chunks)
            # the file's and the columns' problems (and the first chunk's rows') before an index is replaced
            columns = catalog_columns(first, id_field, text_fields, template)
            first_part = catalog_of(first, columns, on_invalid, require_rows=False)
            # BM25's average length from the first chunk (the same model for every chunk, and after a resume)
            bm25 = Bm25Model.from_json(progress["bm25"]) if done_rows and progress.get("bm25") else Bm25Model.fit(first_part.texts)
            del first_part
            if start_over is not None:
                if start_over:
                    report.started_over = start_over
                    say(f"{report.location} holds {start_over}: starting over.")
                index.close()
                index = location.open(recreate=True, modifier=encoder.modifier)  # miniCOIL: IDF
            build_run = _Build(encoder, path, index, build, report, chunk_size, batch_size, on_invalid, say, bm25)
            build_run.seconds["read"] = time.perf_counter() - began_reading
            build_run.run(stream, itertools.chain([first], chunks), columns, done_rows, location, show_progress,
                          after_chunk)
    finally:
        index.close()
    report.seconds["total"] = time.perf_counter() - began
    return report


class _Build:
    """One pass over the catalog file: chunks already in the index (an interrupted earlier call) are read
    again for their ids and fingerprints only; the others are encoded and upserted."""

    def __init__(self, encoder: Encoder, path: Path, index: SparseIndex, build: dict, report: IndexingReport,
                 chunk_size: int, batch_size: int, on_invalid: str, say: Notify, bm25: Bm25Model) -> None:
        self.encoder, self.path, self.index, self.build, self.report = encoder, path, index, build, report
        self.bm25 = bm25 if index.has_bm25 else None  # an index made before BM25 was indexed goes on without it
        self.chunk_size, self.batch_size, self.on_invalid, self.say = chunk_size, batch_size, on_invalid, say
        self.seen = SeenIds()
        self.skipped: Counter[str] = Counter()
        self.seconds = {"read": 0.0, "encode": 0.0, "index": 0.0}
        # Chunk n is stored (BM25, upsert, progress record) on a second thread while chunk n+1 is read and encoded.
        self._storing = OneAhead("upsert")

    def run(self, stream: TableStream, chunks: Iterator[Table], columns: CatalogColumns, done_rows: int,
            location: IndexLocation, show_progress: bool, after_chunk: Callable[[int, int], None] | None) -> None:
        catalog_digest = hashlib.sha256()
        payload_digest: PayloadDigest | None = None
        payload_keys: dict[str, None] = {}
        types: dict[str, str] = {}
        rows = products = 0
        bar = progress_bar(f"indexing {self.path.name} with {self.encoder.name}", None, enabled=show_progress,
                           unit="products", completed=self.report.resumed_products)
        with bar as advance, self._storing:
            began = time.perf_counter()
            for number, table in enumerate(chunks):
                rows += len(table)
                part = self._new_products(catalog_of(table, columns, self.on_invalid, require_rows=False))
                del table
                if payload_digest is None:
                    payload_digest = PayloadDigest(part.payload.columns)
                part.add_to_fingerprint(catalog_digest)
                payload_digest.update(part)
                payload_keys.update(dict.fromkeys(map(str, part.payload.columns)))
                types = {**payload_types(part.payload), **types}  # the first chunk that has a column types it
                self.skipped.update(part.skipped)
                products += len(part)
                self.seconds["read"] += time.perf_counter() - began
                if rows > done_rows:  # not in the index yet
                    self._index(part, rows, products, lambda n=number, p=products: after_chunk and after_chunk(n, p))
                    advance(len(part))
                    fraction = stream.fraction()
                    if fraction > 0:
                        advance.set_total(max(products, round(products / fraction)))
                del part
                began = time.perf_counter()
            self._storing.wait()
            advance.set_total(products)
        report = self.report
        report.rows, report.products, report.type_notes = rows, products, list(stream.type_notes)
        report.skipped = dict(self.skipped)
        report.seconds.update(self.seconds)
        if products == 0:
            raise no_usable_products(self.path, rows, report.skipped)
        count = self.index.count()
        if count != products:
            raise SparsefitError(
                f"the index holds {count:,} points but the catalog has {products:,} products", file=self.path,
                hint="index it again into a new --output folder or --collection",
            )
        assert payload_digest is not None
        identity = index_identity(self.build["model"], catalog_digest.hexdigest(), payload_digest.hexdigest(), location)
        self.index.set_metadata(complete_metadata(identity, self.encoder, payload_keys,
                                                  **{BUILT_FROM_KEY: self.build, "products": products,
                                                     "skipped": report.skipped,
                                                     "bm25": self.bm25.to_json() if self.bm25 else None,
                                                     "payload_types": types}))

    def _index(self, part: Catalog, rows: int, products: int, after: Callable[[], object]) -> None:
        """Encode one chunk's products here, then store them on the storing thread (once the previous chunk
        is stored: chunks are recorded in order, so a resume never skips one)."""
        began = time.perf_counter()
        vectors = self.encoder.encode_documents(part.texts, batch_size=self.batch_size) if len(part) else None
        self.seconds["encode"] += time.perf_counter() - began
        self._storing.submit(self._store, part, vectors, rows, products, after)

    def _store(self, part: Catalog, vectors: Any, rows: int, products: int, after: Callable[[], object]) -> None:
        """Upsert one chunk's products, then record that the rows up to ``rows`` are done."""
        began = time.perf_counter()
        if len(part):
            bm25 = self.bm25.documents(part.texts) if self.bm25 is not None else None
            self.index.upsert(part.ids, vectors, part.payloads(), bm25=bm25)
            del vectors
        self.index.set_metadata({
            "format": INDEX_FORMAT, "model": self.build["model"], "complete": False,
            PROGRESS_KEY: {"build": self.build, "chunk_size": self.chunk_size, "rows": rows, "products": products,
                           "bm25": self.bm25.to_json() if self.bm25 else None},
        })
        _give_back_freed_memory()
        self.seconds["index"] += time.perf_counter() - began
        after()

    def _new_products(self, part: Catalog) -> Catalog:
        """``part`` without the products whose id an earlier chunk had (an error unless skipping bad rows)."""
        hashes = id_hashes(part.ids)
        hits = np.flatnonzero(self.seen.contains(hashes))
        if len(hits):
            self._storing.wait()  # the index answers for every earlier chunk
            # a 64-bit hash may (one time in ten million, at two million products) match another id: the
            # index, which holds every earlier chunk's products, confirms
            found = self.index.retrieve([part.ids[i] for i in hits])
            repeated = [int(i) for i, payload in zip(hits, found) if payload is not None]
            if repeated and self.on_invalid == "error":
                i = repeated[0]
                raise repeated_id(self.path, part.id_field, int(part.rows[i]), part.ids[i],
                                  self._first_row(part.ids[i], part.id_field))
            if repeated:
                keep = np.ones(len(part), dtype=bool)
                keep[repeated] = False
                part = _subset(part, keep, len(repeated))
                hashes = hashes[keep]
        self.seen.add(hashes)
        return part

    def _first_row(self, product_id: str, id_field: str) -> int:
        """The row of the first product with ``product_id`` (read again: only an error needs it)."""
        with stream_table(self.path, chunk_size=self.chunk_size, encoding=self.build["reading"]["encoding"]) as stream:
            for table in stream:
                ids = table.values(id_field, use="id")
                if product_id in ids:
                    return int(table.rows[ids.index(product_id)])
        raise AssertionError(f"{product_id!r} was seen but is not in {self.path}")  # pragma: no cover


def _subset(part: Catalog, keep: np.ndarray, repeated: int) -> Catalog:
    positions = np.flatnonzero(keep)
    skipped = dict(part.skipped)
    skipped["duplicate id"] = skipped.get("duplicate id", 0) + repeated
    return Catalog(
        ids=[part.ids[i] for i in positions], texts=[part.texts[i] for i in positions],
        payload=part.payload.iloc[positions].reset_index(drop=True), id_field=part.id_field,
        text_fields=part.text_fields, template=part.template, source=part.source, skipped=skipped,
        rows=None if part.rows is None else part.rows[positions],
    )


def _why_not_resumed(meta: dict[str, Any], build: dict, index: SparseIndex) -> str | None:
    """Why the index at hand cannot be gone on with (None: it is empty and has no metadata)."""
    if meta.get("complete") and meta.get(BUILT_FROM_KEY) == build:
        return f"a complete index of this catalog whose {index.count():,} points are not its {meta.get('products')} products"
    state = "a complete index" if meta.get("complete") else "an unfinished index"
    old = meta.get(BUILT_FROM_KEY) if meta.get("complete") else (meta.get(PROGRESS_KEY) or {}).get("build")
    if not isinstance(old, dict):
        if meta:
            return f"{state} not built by `sparsefit index`"
        return f"{index.count():,} points without sparsefit's metadata" if index.count() else None
    if old.get("format") != build["format"]:
        return f"{state} recorded by another version of sparsefit"
    if (old.get("model"), old.get("max_seq_length")) != (build["model"], build["max_seq_length"]):
        return f"{state} of another model (fingerprint {old.get('model')}, this one's is {build['model']})"
    source, now = old.get("source") or {}, build["source"]
    if source.get("path") != now["path"]:
        return f"{state} of another catalog ({source.get('path')})"
    if source != now:
        return f"{state} of this catalog as it was before it changed (its size, time or first MiB differ)"
    changed = [f"{k} {v!r}, now {build['reading'].get(k)!r}" for k, v in (old.get("reading") or {}).items()
               if build["reading"].get(k) != v]
    return f"{state} of this catalog read with other options ({', '.join(changed) or 'another reading'})"


def source_identity(path: Path) -> dict[str, Any]:
    """The catalog file as a build records it: resolved path, size, modification time and the sha256 of its
    first MiB (a file replaced by another of the same size and time still differs there)."""
    try:
        stat = path.stat()
        with path.open("rb") as handle:
            head = hashlib.sha256(handle.read(HEAD_BYTES)).hexdigest()
    except FileNotFoundError:
        raise SparsefitError("file not found", file=path,
                             hint="check the path (relative paths start from the current folder)") from None
    except OSError as exc:
        raise SparsefitError(f"can't read the file: {exc.strerror or exc}", file=path,
                             hint="check that it is a readable file") from None
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


def _max_seq_length(encoder: Encoder) -> int | None:
    value = getattr(getattr(encoder, "model", None), "max_seq_length", None)  # miniCOIL has no .model
    return int(value) if isinstance(value, int) else None


def id_hashes(ids: list[str]) -> np.ndarray:
    """A 64-bit hash of each product id (pandas' SipHash with its fixed key: the same in every process).

    Example:
        >>> bool(id_hashes(["a", "b"])[0] == id_hashes(["c", "a"])[1])
        True
    """
    if not ids:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


class SeenIds:
    """A growing set of 64-bit hashes in a few sorted arrays (8 bytes an id, no Python object per id):
    each array is at least twice the next one's size, so a lookup searches O(log n) arrays and an id is
    merged O(log n) times.

    Example:
        >>> seen = SeenIds()
        >>> seen.add(np.array([5, 3], dtype=np.uint64)); seen.add(np.array([9], dtype=np.uint64))
        >>> seen.contains(np.array([3, 4, 9], dtype=np.uint64)).tolist(), len(seen)
        ([True, False, True], 3)
    """

    def __init__(self) -> None:
        self._levels: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        found = np.zeros(len(hashes), dtype=bool)
        for level in self._levels:
            at = np.minimum(np.searchsorted(level, hashes), len(level) - 1)
            found |= level[at] == hashes
        return found

    def add(self, hashes: np.ndarray) -> None:
        merged = np.sort(np.asarray(hashes, dtype=np.uint64))
        while self._levels and len(self._levels[-1]) <= 2 * len(merged):
            merged = np.sort(np.concatenate([self._levels.pop(), merged]))
        if len(merged):
            self._levels.append(merged)


def model_source(model: str | Path) -> tuple[str, Path | None]:
    """What ``--model`` names, to load: (a model folder, alias or hub id; the run folder when it names a run).

    A run folder (a ``sparsefit train`` output) gives its exported ``model/``, and only once the run has
    exported it (before, ``model/`` may be an older export or one being written).
    """
    folder = Path(model).expanduser()
    run = RunFolder(folder)
    if not folder.is_dir() or not any(f.is_file() for f in (run.state_file, run.config, run.sources)):
        return str(model), None
    if not exported(folder) or not run.model.is_dir():
        raise SparsefitError("the run has not finished exporting its model", file=folder,
                             hint=f"wait for the run to finish, or continue it with `sparsefit train --resume {folder}`")
    return str(run.model), folder


_LIBC: Any = None


def _give_back_freed_memory() -> None:
    """Hand the memory freed with a chunk back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Each chunk allocates and frees texts, token tensors, vectors and payloads of varying sizes in several
    threads; glibc keeps what was freed in its arenas, so without this the process's resident memory
    creeps up chunk after chunk although the memory in use does not. A few milliseconds a chunk.
    """
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util

        try:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)
