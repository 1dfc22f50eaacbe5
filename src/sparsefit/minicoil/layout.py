"""The sparse layout of a miniCOIL vector, as Qdrant's fastembed lays it out.

Why follow fastembed exactly: an index is only as portable as its indices. With the same layout, a
collection built here can be queried by anything that makes miniCOIL queries fastembed's way from
the same vocabulary and weights (see docs/minicoil.md).

* A vocabulary word (one with a trained layer) has id ``1..V`` (0 is fastembed's "unknown") and owns
  the ``dims`` indices ``id·dims + k``, ``k = 0..dims−1``.
* Any other word gets one exact-match index: ``shift + |murmur3_32(stem)| mod (2³¹−1 − shift)``, where
  ``shift = ((V+1)·dims // 32000 + 2) · 32000`` keeps the hash range clear of the vocabulary's.
* Document values: the unit-length meaning times BM25's term-frequency part
  ``tf·(k+1) / (tf + k·(1 − b + b·len/avg_len))``; an unknown word's value is that part alone.
* Query values: the unit-length meaning, or 1 for an unknown word. Qdrant's IDF modifier multiplies
  each index by its IDF at search time, so an unknown word scores exactly BM25 and a known one
  BM25 times the cosine of the two meanings.

Example:
    >>> layout = Layout(words=10, dims=4)
    >>> layout.word_indices(3)
    [12, 13, 14, 15]
    >>> layout.shift, layout.unknown_index("drill") >= layout.shift
    (64000, True)
    >>> murmur3_32(b"foo")
    -156908512
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

GAP = 32_000
INT32_MAX = 2**31 - 1
DIMENSION = INT32_MAX  # every index is below 2**31 - 1: int32 CSR indices suffice


@dataclass(frozen=True)
class Layout:
    """Where a model with ``words`` vocabulary words of ``dims`` dimensions puts each word."""

    words: int
    dims: int

    @property
    def shift(self) -> int:
        """The first index of the unknown words' hash range (fastembed: ``unknown_words_shift``)."""
        return ((self.words + 1) * self.dims // GAP + 2) * GAP

    def word_indices(self, word_id: int) -> list[int]:
        """The ``dims`` indices of vocabulary word ``word_id`` (1-based)."""
        return [word_id * self.dims + k for k in range(self.dims)]

    def unknown_index(self, stem: str) -> int:
        """The exact-match index of a word without a layer."""
        return _unknown_index(stem, self.shift)

    def word_of_index(self, index: int) -> tuple[int, int] | None:
        """``(word_id, k)`` for an index in the vocabulary's range, else None (a hashed word)."""
        word_id, k = divmod(index, self.dims)
        return (word_id, k) if 1 <= word_id <= self.words else None


@lru_cache(maxsize=1 << 18)
def _unknown_index(stem: str, shift: int) -> int:
    return shift + abs(murmur3_32(stem.encode("utf-8"))) % (INT32_MAX - shift)


def bm25_tf(count: float, length: float, *, k: float, b: float, avg_len: float) -> float:
    """BM25's saturated term frequency (no IDF: Qdrant's IDF modifier supplies it).

    >>> round(bm25_tf(1, 5, k=1.2, b=0.75, avg_len=5.0), 6)
    1.0
    """
    return count * (k + 1) / (count + k * (1 - b + b * length / avg_len))


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit as a signed int (what ``mmh3.hash`` returns, which fastembed uses).

    >>> murmur3_32(b""), murmur3_32(b"test") & 0xFFFFFFFF == 0xBA6BD213
    (0, True)
    """
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    length = len(data)
    whole = length - length % 4
    for i in range(0, whole, 4):
        block = int.from_bytes(data[i : i + 4], "little")
        block = (block * c1) & mask
        block = ((block << 15) | (block >> 17)) & mask
        block = (block * c2) & mask
        h ^= block
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[whole:]
    if tail:
        block = int.from_bytes(tail, "little")
        block = (block * c1) & mask
        block = ((block << 15) | (block >> 17)) & mask
        block = (block * c2) & mask
        h ^= block
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h
