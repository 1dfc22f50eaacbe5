"""The BM25 baseline, with bm25s (sparse-matrix BM25, Lucene variant, English stopwords).

Example:
    >>> bm25 = BM25Baseline(["cordless drill 20v", "garden hose 50 ft"], ["a", "b"])
    >>> bm25.search(["drill"], k=1)[0]
    [('a', ...)]
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np


class BM25Baseline:
    """BM25 over the catalog texts; ``search`` returns ranked (product id, score) lists."""

    def __init__(self, texts: Sequence[str], ids: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.ids = list(ids)
        self.retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        tokens = bm25s.tokenize(list(texts), stopwords="en", show_progress=False)
        self.retriever.index(tokens, show_progress=False)

    def search(self, queries: Sequence[str], k: int = 100) -> list[list[tuple[str, float]]]:
        """Top ``k`` products per query, best first; only products with a positive score."""
        k = min(k, len(self.ids))
        tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        documents, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        results = []
        for row_docs, row_scores in zip(documents, scores):
            keep = np.asarray(row_scores) > 0
            results.append([(self.ids[int(d)], float(s)) for d, s in zip(row_docs[keep], row_scores[keep])])
        return results
