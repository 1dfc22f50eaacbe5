"""A trained miniCOIL model: per-word 4-d sense layers over a sentence-transformers model's token embeddings.

Why it duck-types :class:`sparsefit.models.Encoder` (``name``, ``encode_documents``, ``encode_queries``,
``vocab_size``, ``vocab``, ``decode``, ``device``, ``to``, ``fingerprint``, ``save``): the indexing,
evaluation and serving code then takes it where it takes a SPLADE encoder; ``modifier = "idf"`` tells
them to build the index with Qdrant's IDF modifier, which miniCOIL needs (the vectors carry no IDF).
The layout of the vectors is in :mod:`sparsefit.minicoil.layout`.

Example:
    >>> model = load_minicoil("runs/x/minicoil")                              # doctest: +SKIP
    >>> model.decode(model.encode_documents(["apple iphone case"])[0])        # doctest: +SKIP
    [('apple', 1.0), ('iphone', 1.0), ('case', 1.0)]
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.minicoil.contexts import TokenEmbedder, WordBatch
from sparsefit.minicoil.explain import SharedWord, shared_words
from sparsefit.minicoil.layout import DIMENSION, Layout, bm25_tf
from sparsefit.minicoil.words import Analyzer

ENCODE_CHUNK = 4096  # texts per transformer call sequence: bounds the memory of one chunk's token vectors


@dataclass
class Analysed:
    """The words of some texts with their layout entries: ``ids`` 0 for a word without a layer."""

    batch: WordBatch
    ids: np.ndarray  # (pairs,) vocabulary id, 0 = exact-match word
    meanings: np.ndarray  # (pairs, dims) unit vectors; zeros where ids is 0
    tf: np.ndarray  # (pairs,) BM25's term-frequency part (documents) or 1 (queries)


@dataclass(eq=False)  # compared by identity: the weights are arrays
class MiniCoil:
    """The vocabulary (stems, id = position + 1), their layers ``weights[id]`` (hidden × dims; row 0 unused),
    the analyzer and BM25's ``k``, ``b`` and ``avg_len``, and the training catalog's document frequencies."""

    weights: np.ndarray  # (words + 1, hidden, dims) float32
    stems: list[str]
    analyzer: Analyzer
    encoder: str
    sentence_model: str
    k: float = 1.2
    b: float = 0.75
    avg_len: float = 10.0
    max_seq_length: int = 128
    document_count: int = 0
    frequencies: dict[str, int] = field(default_factory=dict)  # stem -> documents of the training catalog
    forms: dict[str, str] = field(default_factory=dict)  # stem -> its most frequent surface word
    training: dict[str, Any] = field(default_factory=dict)
    name: str = "minicoil"
    modifier: str = "idf"
    architecture: str = "minicoil"

    def __post_init__(self) -> None:
        if self.weights.ndim != 3 or self.weights.shape[0] != len(self.stems) + 1:
            raise SparsefitError(f"miniCOIL weights of shape {self.weights.shape} do not fit {len(self.stems)} words",
                                 hint="the model folder is damaged: train it again")
        self._embedder: TokenEmbedder | None = None
        self._device = "cpu"
        self._loading = threading.Lock()  # served: the first queries may arrive together

    # -- shape -----------------------------------------------------------------------------
    @property
    def dims(self) -> int:
        return int(self.weights.shape[2])

    @property
    def hidden_size(self) -> int:
        return int(self.weights.shape[1])

    @cached_property
    def layout(self) -> Layout:
        return Layout(words=len(self.stems), dims=self.dims)

    @property
    def vocab_size(self) -> int:
        """Dimensions of the sparse vectors: 2³¹ − 1 (hashed exact-match words reach that far)."""
        return DIMENSION

    @cached_property
    def word_ids(self) -> dict[str, int]:
        return {stem: i + 1 for i, stem in enumerate(self.stems)}

    @cached_property
    def vocab(self) -> IndexNames:
        """Names by sparse index (``vocab[i]``), as ``Encoder.vocab`` gives them: ``drill#2``, or a hashed word."""
        return IndexNames(self)

    # -- device ----------------------------------------------------------------------------
    @property
    def embedder(self) -> TokenEmbedder:
        with self._loading:
            if self._embedder is None:
                self._embedder = TokenEmbedder.load(self.encoder, max_seq_length=self.max_seq_length,
                                                    device=self._device)
            return self._embedder

    @property
    def device(self) -> str:
        return self._device

    def to(self, device: str) -> MiniCoil:
        """Move the transformer and the layers to ``device`` (a resolved torch device)."""
        self._device = str(device)
        if self._embedder is not None:
            self._embedder.model.to(device)
        self.__dict__.pop("_layers", None)
        return self

    @cached_property
    def _layers(self) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.weights, dtype=np.float32)).to(self._device)

    # -- encoding --------------------------------------------------------------------------
    def meanings(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Unit-length ``tanh(x · W[id])`` for token vectors ``x`` of vocabulary words ``ids`` (1-based)."""
        if not len(ids):
            return np.zeros((0, self.dims), dtype=np.float32)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(self._device)
            layers = self._layers[torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(self._device)]
            out = torch.tanh(torch.bmm(x[:, None, :], layers)[:, 0, :])
            return torch.nn.functional.normalize(out, dim=-1).cpu().numpy()

    def analyse(self, texts: Sequence[str], *, query: bool, batch_size: int = 64) -> Analysed:
        """Every kept word of ``texts`` with its vocabulary id, meaning and BM25 weight."""
        batch = self.embedder.embed(texts, self.analyzer, batch_size=batch_size)
        lookup = self.word_ids
        ids = np.fromiter((lookup.get(s, 0) for s in batch.stems), dtype=np.int64, count=len(batch.stems))
        ids[~batch.seen] = 0  # a word the transformer never saw (cut off) can only match exactly
        meanings = np.zeros((len(ids), self.dims), dtype=np.float32)
        known = ids > 0
        meanings[known] = self.meanings(batch.vectors[known], ids[known])
        if query:
            tf = np.ones(len(ids), dtype=np.float64)
        else:
            tf = bm25_tf(batch.counts.astype(np.float64), batch.lengths[batch.text_of].astype(np.float64),
                         k=self.k, b=self.b, avg_len=self.avg_len)
        return Analysed(batch, ids, meanings, tf)

    def encode_documents(self, texts: Sequence[str], *, batch_size: int = ENCODE_BATCH_SIZE,
                         progress: Callable[[int], None] | None = None) -> sp.csr_matrix:
        """Products: per word its meaning times BM25's term-frequency part; one CSR row per text."""
        return self._encode(texts, False, batch_size, progress)

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = ENCODE_BATCH_SIZE,
                       progress: Callable[[int], None] | None = None) -> sp.csr_matrix:
        """Queries: per distinct word its meaning (or 1 for a word without a layer); one CSR row per text."""
        return self._encode(texts, True, batch_size, progress)

    def _encode(self, texts: Sequence[str], query: bool, batch_size: int,
                progress: Callable[[int], None] | None) -> sp.csr_matrix:
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[start : start + ENCODE_CHUNK]
            parts.append(self._rows(self.analyse(chunk, query=query, batch_size=batch_size), len(chunk)))
            if progress is not None:
                progress(len(chunk))
        return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, DIMENSION), dtype=np.float32)

    def _rows(self, analysed: Analysed, texts: int) -> sp.csr_matrix:
        known = analysed.ids > 0
        dims = self.dims
        known_rows = np.repeat(analysed.batch.text_of[known], dims)
        known_cols = (analysed.ids[known, None] * dims + np.arange(dims)).ravel()
        known_values = (analysed.meanings[known] * analysed.tf[known, None]).ravel()
        unknown = np.flatnonzero(~known)
        layout = self.layout
        unknown_cols = np.fromiter((layout.unknown_index(analysed.batch.stems[i]) for i in unknown),
                                   dtype=np.int64, count=len(unknown))
        rows = np.concatenate([known_rows, analysed.batch.text_of[unknown]])
        cols = np.concatenate([known_cols, unknown_cols])
        values = np.concatenate([known_values, analysed.tf[unknown]]).astype(np.float32)
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(texts, DIMENSION))
        matrix.sum_duplicates()  # two hashed words of one text may share an index (as in fastembed)
        matrix.eliminate_zeros()
        return matrix

    # -- inspection ------------------------------------------------------------------------
    def display(self, stem: str) -> str:
        """The surface word shown for a stem: its most frequent form in the training catalog."""
        return self.forms.get(stem, stem)

    def decode(self, vector: sp.spmatrix | np.ndarray, top_k: int | None = 10) -> list[tuple[str, float]]:
        """The words of one vector as (word, weight), best first; a word's weight is the length of its
        part of the vector (BM25's term-frequency part for a product, 1 for a query word)."""
        row = sp.csr_matrix(vector)
        if row.shape[0] != 1:
            raise SparsefitError(f"decode takes one vector, got {row.shape[0]} rows")
        weights: dict[str, float] = {}
        for index, value in zip(row.indices.tolist(), row.data.tolist()):
            slot = self.layout.word_of_index(index)
            name = self.display(self.stems[slot[0] - 1]) if slot else self.vocab.hashed(index)
            weights[name] = weights.get(name, 0.0) + value * value
        ranked = sorted(((w, float(np.sqrt(v))) for w, v in weights.items()), key=lambda item: (-item[1], item[0]))
        return ranked[:top_k] if top_k is not None else ranked

    def explain(self, query: str, document: str) -> list[SharedWord]:
        """The words a query and a product share, each with its part of the score; see :mod:`.explain`."""
        return shared_words(self, query, document)

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the vectors: equal fingerprints mean identical vectors."""
        digest = hashlib.sha256(np.ascontiguousarray(self.weights, dtype=np.float32).tobytes())
        settings = [self.stems, self.analyzer.to_json(), sorted(self.analyzer.stopwords), self.encoder,
                    self.k, self.b, self.avg_len, self.max_seq_length]
        digest.update(json.dumps(settings).encode())
        return digest.hexdigest()[:16]

    def save(self, folder: str | Path) -> Path:
        """Write the model folder atomically (see :mod:`sparsefit.minicoil.store`)."""
        from sparsefit.minicoil.store import save_minicoil

        return save_minicoil(self, folder)

    def __repr__(self) -> str:
        return f"MiniCoil(name={self.name!r}, words={len(self.stems)}, dims={self.dims}, encoder={self.encoder!r})"



class IndexNames:
    """``names[index]``: ``word#k`` for a vocabulary word's k-th dimension, the word itself for a hashed word
    of the training catalog, ``#index`` for any other hashed index."""

    def __init__(self, model: MiniCoil) -> None:
        self.model = model

    def __len__(self) -> int:
        return DIMENSION

    def __getitem__(self, index: int) -> str:
        slot = self.model.layout.word_of_index(int(index))
        if slot is not None:
            return f"{self.model.display(self.model.stems[slot[0] - 1])}#{slot[1]}"
        return self.hashed(int(index))

    def hashed(self, index: int) -> str:
        return self._hashed.get(index, f"#{index}")

    @cached_property
    def _hashed(self) -> Mapping[int, str]:
        known = set(self.model.stems)
        layout = self.model.layout
        names: dict[int, str] = {}
        for stem in self.model.frequencies:
            if stem not in known:
                index = layout.unknown_index(stem)
                names[index] = f"{names[index]}|{self.model.display(stem)}" if index in names else self.model.display(stem)
        return names


def load_minicoil(folder: str | Path) -> MiniCoil:
    """Load a folder written by :meth:`MiniCoil.save` (a clear error if it is not one)."""
    from sparsefit.minicoil.store import load_minicoil as load

    return load(folder)
