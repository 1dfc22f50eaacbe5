"""Hard-negative mining through the index (ANCE style): search every training query with the current model.

For each training query: one batched search of the catalog index, top-k, with every known positive
of the query excluded by an id filter in the search itself; candidates scoring at or above a
fraction of the query's best positive score are dropped as likely false negatives (unjudged
products the model ranks level with or above every known positive are more often relevant than not); negatives are then
sampled (``top``, ``mixed`` or ``random``), and every row is padded to the same number of negatives
with random catalog products when mining finds too few (counted).

Example:
    >>> negatives, stats = mine_negatives(encoder, index, queries, positives, doc_vectors, catalog,
    ...                                   MiningOptions(negatives=1))             # doctest: +SKIP
    >>> stats.padded_rows                                                          # doctest: +SKIP
    0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from sparsefit.data import Catalog
from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.index import Filter, SparseIndex
from sparsefit.models import Encoder

Strategy = Literal["top", "mixed", "random"]


@dataclass
class MiningOptions:
    negatives: int = 1  # per training row
    top_k: int = 50  # candidates searched per query
    strategy: Strategy = "mixed"
    false_negative_fraction: float = 0.95  # drop candidates scoring >= this × the query's best positive score
    seed: int = 13


@dataclass
class MiningStats:
    """Counts from one mining pass (saved as rounds/<n>/mining.json)."""

    queries: int = 0
    rows: int = 0
    candidates: int = 0  # hits returned by the searches
    returned_positives: int = 0  # positives that came back despite the id filter (must stay 0)
    dropped_false_negatives: int = 0
    negatives: int = 0  # mined negatives used, over all rows
    padded: int = 0  # negatives filled in from random products
    padded_rows: int = 0  # rows that needed any padding
    negatives_per_row: int = 0
    mean_mined_per_query: float = 0.0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def mine_negatives(
    encoder: Encoder,
    index: SparseIndex,
    queries: Mapping[str, str],
    positives: Mapping[str, Sequence[str]],
    excluded: Mapping[str, Sequence[str]],
    doc_vectors: sp.csr_matrix,
    catalog: Catalog,
    options: MiningOptions,
    *,
    batch_size: int = ENCODE_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[list[str]]], MiningStats]:
    """Negatives for every (query, positive) row: ``{query_key: [[neg ids] per positive]}``.

    ``queries`` maps query key → text; ``positives`` the training positives of each key (one row
    each); ``excluded`` every product that must never be a negative for the key (all its judged
    relevant products, at least the positives). ``doc_vectors`` are the catalog's vectors from the
    same model (row i = ``catalog.ids[i]``), used for the positive scores.
    """
    import time

    if options.strategy not in ("top", "mixed", "random"):
        raise SparsefitError(f"unknown mining strategy '{options.strategy}'", hint="use top, mixed or random")
    if options.negatives < 1:
        raise SparsefitError("mining needs at least 1 negative per row", hint="set --negatives 1 or more")
    started = time.perf_counter()
    keys = [k for k in queries if positives.get(k)]
    stats = MiningStats(queries=len(keys), negatives_per_row=options.negatives)
    query_vectors = encoder.encode_queries([queries[k] for k in keys], batch_size=batch_size)
    filters = [Filter(exclude_ids=tuple(sorted(set(excluded.get(k, ())) | set(positives[k])))) for k in keys]
    # exact even on a two-stage index: the hardest negatives are what the candidate stage may miss
    hits = index.search_batch(query_vectors, limit=options.top_k, filters=filters, progress=progress, exact=True)
    rng = np.random.default_rng(options.seed)
    result: dict[str, list[list[str]]] = {}
    mined_total = 0
    for row, key in enumerate(keys):
        banned = set(excluded.get(key, ())) | set(positives[key])
        candidates = [(h.product_id, h.score) for h in hits[row]]
        stats.candidates += len(candidates)
        stats.returned_positives += sum(1 for pid, _ in candidates if pid in banned)
        candidates = [(pid, s) for pid, s in candidates if pid not in banned]
        floor = options.false_negative_fraction * _best_positive_score(query_vectors[row], positives[key], doc_vectors, catalog)
        kept = [pid for pid, s in candidates if s < floor]
        stats.dropped_false_negatives += len(candidates) - len(kept)
        mined_total += len(kept)
        per_row = []
        for _ in positives[key]:
            chosen = _sample(kept, options.negatives, options.strategy, rng)
            if len(chosen) < options.negatives:
                stats.padded_rows += 1
                fill = _random_products(catalog, options.negatives - len(chosen), banned | set(chosen), rng)
                stats.padded += len(fill)
                chosen += fill
            stats.negatives += len(chosen)
            per_row.append(chosen)
        stats.rows += len(per_row)
        result[key] = per_row
    stats.mean_mined_per_query = mined_total / max(1, len(keys))
    stats.seconds = time.perf_counter() - started
    return result, stats


def _best_positive_score(query: sp.csr_matrix, positives: Sequence[str], doc_vectors: sp.csr_matrix, catalog: Catalog) -> float:
    """The query's highest score over its known positives with the current model."""
    rows = [catalog.position(pid) for pid in positives]
    scores = (doc_vectors[rows] @ query.T).toarray().ravel()
    return float(scores.max()) if len(scores) else float("inf")


def _sample(kept: list[str], n: int, strategy: Strategy, rng: np.random.Generator) -> list[str]:
    if len(kept) <= n:
        return list(kept)
    if strategy == "top":
        return kept[:n]
    if strategy == "random":
        return [kept[i] for i in sorted(rng.choice(len(kept), size=n, replace=False))]
    # mixed: half from the very top, the rest anywhere further down the candidate list; an odd middle one is
    # either, by a coin flip (so with 1 negative, half the rows get the hardest candidate, not all of them)
    top = n // 2 + (n % 2 == 1 and rng.random() < 0.5)
    rest = rng.choice(np.arange(top, len(kept)), size=n - top, replace=False) if n > top else []
    return kept[:top] + [kept[i] for i in sorted(rest)]


def _random_products(catalog: Catalog, n: int, banned: set[str], rng: np.random.Generator) -> list[str]:
    chosen: list[str] = []
    if len(catalog) - len(banned) < n:
        raise SparsefitError(
            f"the catalog has too few products to give {n} negatives", hint="lower --negatives"
        )
    while len(chosen) < n:
        pid = catalog.ids[int(rng.integers(len(catalog)))]
        if pid not in banned and pid not in chosen:
            chosen.append(pid)
    return chosen
