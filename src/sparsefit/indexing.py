"""Indexing: the catalog encoded by one model into a Qdrant collection, reused while nothing changed.

Its own stage (training, evaluation and serving all use it): an index is rebuilt when the model, the
catalog's ids or texts, its payload (prices, stock flags that serving filters on) or the search mode
changed, and reopened otherwise.

Example:
    >>> from sparsefit.data import load_catalog
    >>> from sparsefit.models import load_encoder
    >>> from sparsefit.index import IndexLocation
    >>> index, vectors = catalog_index(load_encoder("splade-tiny"), load_catalog("examples/catalog.csv"),
    ...                                IndexLocation(path=Path("index")), show_progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import time
import weakref
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sparsefit.data import Catalog
from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.files import replace_file
from sparsefit.index import Bm25Model, IndexLocation, SparseIndex
from sparsefit.index.boost import payload_types
from sparsefit.models import Encoder
from sparsefit.models.dense import DenseEncoder
from sparsefit.progress import progress_bar

INDEX_FORMAT = 2  # bump when the way we index changes, so old indexes are rebuilt (2: Qdrant's BM25 beside the model's)


def payload_fingerprint(catalog: Catalog) -> str:
    """sha256 over the catalog's payload columns and values: an edited price or stock flag rebuilds the index
    (serving filters on the payload stored in it). Hashed column-wise by pandas; per row as JSON where a
    column holds values pandas cannot hash (nested JSON).

    Example:
        >>> from sparsefit.data import load_catalog
        >>> len(payload_fingerprint(load_catalog("examples/catalog.csv")))
        64
    """
    digest = PayloadDigest(catalog.payload.columns)
    digest.update(catalog)
    return digest.hexdigest()


class PayloadDigest:
    """:func:`payload_fingerprint` fed a part of the catalog at a time (the chunks of a streamed file, in order)."""

    def __init__(self, columns) -> None:
        self._digest = hashlib.sha256(json.dumps([str(c) for c in columns]).encode("utf-8"))

    def update(self, part: Catalog) -> None:
        import pandas as pd

        try:
            self._digest.update(pd.util.hash_pandas_object(part.payload, index=False).to_numpy().tobytes())
        except TypeError:
            for i in range(len(part)):
                self._digest.update(json.dumps(part.payload_of(i), sort_keys=True, default=str).encode("utf-8") + b"\x1e")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def index_identity(model: str, catalog: str, payload: str, location: IndexLocation, dense: str | None = None) -> dict:
    """What a complete index records about how it was built (the model's, the catalog's ids and texts' and
    its payload's fingerprints, the search mode): :func:`catalog_index` reopens an index whose metadata has
    all of it, and ``sparsefit index`` writes it too."""
    return {"format": INDEX_FORMAT, "model": model, "catalog": catalog, "payload": payload, "complete": True,
            "two_stage": location.two_stage.settings if location.two_stage else None, "dense": dense}


def complete_metadata(identity: dict, encoder: Encoder, payload_keys, **extra) -> dict:
    """The metadata of a finished index: its :func:`index_identity`, the model's name and the payload's keys
    (a filter on a key no product has is a typo to report, not a search with no hits)."""
    return {**identity, "model_name": encoder.name, "payload_keys": sorted(map(str, payload_keys)), **extra}


def catalog_index(
    encoder: Encoder,
    catalog: Catalog,
    location: IndexLocation,
    *,
    batch_size: int = ENCODE_BATCH_SIZE,
    show_progress: bool = True,
    seconds: dict[str, float] | None = None,
    vectors_file: Path | None = None,
    dense: DenseEncoder | None = None,
) -> tuple[SparseIndex, sp.csr_matrix | None]:
    """The catalog's index for ``encoder``: reopened when complete for this very model, catalog (ids, texts,
    payload) and search mode, else rebuilt.

    With ``vectors_file`` the catalog's vectors are kept there (and returned) too; without it the
    vectors of a reopened index are not needed and None is returned for them.
    """
    seconds = seconds if seconds is not None else {}
    wanted = index_identity(encoder.fingerprint(), catalog.fingerprint(), payload_fingerprint(catalog), location,
                            dense.fingerprint() if dense is not None else None)
    index = location.open()
    meta = index.get_metadata()
    vectors_ok = vectors_file is None or vectors_file.is_file()
    if vectors_ok and all(meta.get(k) == v for k, v in wanted.items()) and index.count() == len(catalog):
        try:
            vectors = sp.load_npz(vectors_file).tocsr() if vectors_file else None
        except (OSError, ValueError, KeyError, EOFError):  # damaged vectors file: rebuild both below
            vectors = False
        if vectors is not False and (vectors is None or vectors.shape[0] == len(catalog)):
            seconds["encode"] = seconds["index"] = 0.0
            return index, vectors
    index.close()
    bm25 = catalog_bm25(catalog)
    index, vectors = build_index(encoder, catalog, location, batch_size=batch_size, show_progress=show_progress,
                                 seconds=seconds, bm25=bm25, dense=dense)
    if vectors_file is not None:
        replace_file(vectors_file, lambda temporary: sp.save_npz(temporary, vectors), suffix=".npz")
    index.set_metadata(complete_metadata(wanted, encoder, catalog.payload.columns, bm25=bm25[0].to_json(),
                                         payload_types=payload_types(catalog.payload),
                                         dense_model=dense.name if dense is not None else None))
    return index, vectors


def catalog_bm25(catalog: Catalog) -> tuple[Bm25Model, sp.csr_matrix]:
    """Qdrant's BM25 for ``catalog`` (its average length measured) and the products' BM25 vectors; computed once
    per catalog object (a run indexes the same catalog for every round)."""
    cached = _BM25_OF.get(catalog)
    if cached is None:
        model = Bm25Model.fit(catalog.texts)
        cached = _BM25_OF[catalog] = (model, model.documents(catalog.texts))
    return cached


_BM25_OF: weakref.WeakKeyDictionary[Catalog, tuple[Bm25Model, sp.csr_matrix]] = weakref.WeakKeyDictionary()


def catalog_dense(catalog: Catalog, dense: DenseEncoder, *, batch_size: int = 64, show_progress: bool = True) -> np.ndarray:
    """The catalog's embeddings under ``dense``, computed once per catalog object and model."""
    cached = _DENSE_OF.setdefault(catalog, {})
    if dense.fingerprint() not in cached:
        parts = []
        with progress_bar(f"encoding {len(catalog):,} products with {dense.name} (dense)", len(catalog),
                          enabled=show_progress) as advance:
            for start in range(0, len(catalog), 4096):
                texts = catalog.texts[start:start + 4096]
                parts.append(dense.encode(texts, batch_size=batch_size))
                advance(len(texts))
        cached[dense.fingerprint()] = np.vstack(parts) if parts else np.zeros((0, dense.size), dtype=np.float32)
    return cached[dense.fingerprint()]


_DENSE_OF: weakref.WeakKeyDictionary[Catalog, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def index_bm25(index: SparseIndex) -> Bm25Model | None:
    """The BM25 model an index was built with (its metadata), None for an index without BM25 vectors."""
    if not index.has_bm25:
        return None
    return Bm25Model.from_json(index.get_metadata().get("bm25"))


def check_index_model(index: SparseIndex, encoder: Encoder, run: Path) -> None:
    """Stop with a clear error when ``index`` was built by another model than ``encoder`` (its vectors would not match).

    An index without sparsefit's metadata (built elsewhere) is accepted as it is.
    """
    built_by = index.get_metadata().get("model")
    if built_by is not None and built_by != encoder.fingerprint():
        raise SparsefitError(
            "the run's catalog index was built with another model than its model/ folder",
            file=run, hint="copy the run's exported model back into model/ (from average/model, or the last rounds/N/model)",
        )


def build_index(
    encoder: Encoder,
    catalog: Catalog,
    location: IndexLocation,
    *,
    batch_size: int = ENCODE_BATCH_SIZE,
    chunk: int = 4096,
    show_progress: bool = True,
    seconds: dict[str, float] | None = None,
    bm25: tuple[Bm25Model, sp.csr_matrix] | None = None,
    dense: DenseEncoder | None = None,
) -> tuple[SparseIndex, sp.csr_matrix]:
    """Encode the whole catalog with ``encoder`` into a fresh index (recreated if it exists), with Qdrant's
    BM25 vectors beside (``bm25``: the model and the products' vectors; default: :func:`catalog_bm25`).

    The catalog is encoded first and upserted in one call (a two-stage index takes its
    thresholds from the whole catalog). Returns the open index and the catalog's vectors
    (row i is ``catalog.ids[i]``).
    """
    seconds = seconds if seconds is not None else {}
    dense_vectors = catalog_dense(catalog, dense, show_progress=show_progress) if dense is not None else None
    index = location.open(recreate=True, dense_size=dense.size if dense is not None else None,
                          modifier=encoder.modifier)  # miniCOIL: IDF from the engine
    parts: list[sp.csr_matrix] = []
    began = time.perf_counter()
    with progress_bar(f"encoding {len(catalog):,} products with {encoder.name}", len(catalog), enabled=show_progress) as advance:
        for start in range(0, len(catalog), chunk):
            stop = min(start + chunk, len(catalog))
            parts.append(encoder.encode_documents(catalog.texts[start:stop], batch_size=batch_size))
            advance(stop - start)
    vectors = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, encoder.vocab_size), dtype=np.float32)
    encoded = time.perf_counter()
    with progress_bar(f"indexing {len(catalog):,} products", len(catalog), enabled=show_progress) as advance:
        payloads = [catalog.payload_of(i) for i in range(len(catalog))]
        index.upsert(catalog.ids, vectors, payloads, progress=advance, bm25=(bm25 or catalog_bm25(catalog))[1],
                     dense=dense_vectors)
    seconds["encode"] = encoded - began
    seconds["index"] = time.perf_counter() - encoded
    return index, vectors
