"""Why a product scores what it scores for a query under miniCOIL: one line per shared word.

Why per word: a miniCOIL score is a sum over the words query and product share of
``idf · tf · cos(query meaning, product meaning)`` (``cos = 1`` for a word without a layer, which
matches exactly as in BM25), so each shared word's three factors say all there is: is the word rare
(IDF), frequent in a short title (tf), and used in the same sense (the cosine).

IDF is what Qdrant's modifier computes, ``ln(1 + (N − n + 0.5) / (n + 0.5))``, here from the training
catalog's counts (``N`` products, ``n`` of them with the word); an index that holds exactly that
catalog computes the same. It is ``None`` for a word the training catalog never had.

Example:
    >>> round(qdrant_idf(documents=3, containing=1), 6)
    0.980829
    >>> model.explain("apple phone", "Apple iPhone 15 case")[0]         # doctest: +SKIP
    SharedWord(word='apple', stem='appl', has_layer=True, tf=1.02, idf=2.3, similarity=0.97, score=2.28)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparsefit.minicoil.model import MiniCoil


@dataclass(frozen=True)
class SharedWord:
    """One word in both texts: its BM25 parts, the cosine of its two meanings, and its share of the score."""

    word: str  # as shown: the stem's most frequent surface form in the training catalog
    stem: str
    has_layer: bool  # False: matched exactly, as in BM25
    tf: float  # the product's BM25 term-frequency part (no IDF)
    idf: float | None  # Qdrant's IDF over the training catalog; None if the catalog never had the word
    similarity: float  # cosine of the query's and the product's meaning (1.0 without a layer)
    score: float  # idf · tf · similarity (tf · similarity where idf is None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def qdrant_idf(*, documents: int, containing: int) -> float:
    """Qdrant's IDF for a word in ``containing`` of ``documents`` products."""
    return math.log(1 + (documents - containing + 0.5) / (containing + 0.5))


def shared_words(model: MiniCoil, query: str, document: str) -> list[SharedWord]:
    """The shared words of ``query`` and ``document``, highest score first."""
    q = model.analyse([query], query=True)
    d = model.analyse([document], query=False)
    by_stem = {stem: i for i, stem in enumerate(d.batch.stems)}
    out = []
    for i, stem in enumerate(q.batch.stems):
        j = by_stem.get(stem)
        if j is None:
            continue
        has_layer = bool(q.ids[i] > 0 and d.ids[j] > 0)
        similarity = float(q.meanings[i] @ d.meanings[j]) if has_layer else 1.0
        if not has_layer and (q.ids[i] > 0 or d.ids[j] > 0):
            similarity = 0.0  # one side cut off by max_seq_length: its exact-match index is not the other's
        tf = float(d.tf[j])
        n = model.frequencies.get(stem)
        idf = qdrant_idf(documents=model.document_count, containing=n) if n and model.document_count else None
        score = tf * similarity * (idf if idf is not None else 1.0)
        out.append(SharedWord(model.display(stem), stem, has_layer, round(tf, 6), None if idf is None else round(idf, 6),
                              round(similarity, 6), round(score, 6)))
    return sorted(out, key=lambda w: (-w.score, w.word))
