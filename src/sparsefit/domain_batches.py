"""Batches for multi-domain training: each batch comes from one domain, and domains take turns by a
sampling temperature.

Why one domain per batch: the loss treats every other row's positive as a negative for a query, and
a product from another catalog (an aeronautics abstract for "cordless drill") is a negative the model
already rejects, so it teaches nothing. Why a temperature: proportional sampling lets the largest
catalog drown a small one, uniform sampling repeats a small one to death; ``p_i ∝ weight_i · rows_i^(1/T)``
sits between (T = 1 proportional, T = 2 the square root, the default; large T uniform).

An epoch is as many batches as the largest domain needs to see each of its rows once (in
expectation), so the largest catalog gets the same passes it would get alone and smaller ones are repeated
(reshuffled each pass). Inside a domain, a row whose text is already in the batch waits for the next
batch (a duplicate text would be a false in-batch negative), as sentence-transformers' no-duplicates
sampler does.

Example:
    >>> [round(p, 3) for p in domain_probabilities([10_000, 100], temperature=2.0)]
    [0.909, 0.091]
    >>> DomainMix(sizes=(10_000, 100), probabilities=(0.909, 0.091)).steps_per_epoch(64)
    173
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from sparsefit.errors import SparsefitError

DEFAULT_TEMPERATURE = 2.0


def domain_probabilities(sizes: Sequence[int], weights: Sequence[float] | None = None,
                         temperature: float = DEFAULT_TEMPERATURE) -> list[float]:
    """How often each domain gives the next batch: ``weight · size^(1/temperature)``, normalised."""
    if temperature <= 0:
        raise SparsefitError(f"the domain sampling temperature must be above 0, not {temperature}",
                             hint="1: proportional to size, 2: square root (default), large: uniform")
    weights = list(weights) if weights is not None else [1.0] * len(sizes)
    raw = [w * (n ** (1.0 / temperature)) if n > 0 else 0.0 for n, w in zip(sizes, weights)]
    total = sum(raw)
    if total <= 0:
        raise SparsefitError("no domain has training rows", hint="check each domain's judgments or generated queries")
    return [r / total for r in raw]


@dataclass(frozen=True)
class DomainMix:
    """The rows of a training round, concatenated domain after domain: their counts and sampling probabilities."""

    sizes: tuple[int, ...]
    probabilities: tuple[float, ...]

    def batches_of(self, i: int, batch_size: int) -> int:
        return math.ceil(self.sizes[i] / min(batch_size, self.sizes[i]))

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches until the largest domain has, in expectation, seen each of its rows once (weights do not stretch it)."""
        largest = max(range(len(self.sizes)), key=lambda i: self.sizes[i])
        return max(1, math.ceil(self.batches_of(largest, batch_size) / self.probabilities[largest]))

    def offsets(self) -> list[int]:
        return [0, *np.cumsum(self.sizes).tolist()]

    def sampler(self) -> type[DefaultBatchSampler]:
        """A sentence-transformers batch sampler class (``batch_sampler=`` takes a class) bound to this mix."""
        return type("DomainBatchSampler", (DomainBatchSampler,), {"mix": self})


class DomainBatchSampler(DefaultBatchSampler):
    """Yields batches of row indices, each from one domain of :attr:`mix` (set by :meth:`DomainMix.sampler`)."""

    mix: DomainMix

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, valid_label_columns=valid_label_columns,
                         generator=generator, seed=seed)
        if sum(self.mix.sizes) != len(dataset):
            raise ValueError(f"the domain sizes {self.mix.sizes} do not add up to the {len(dataset)} rows")
        columns = [c for c in dataset.column_names if c not in ("label", "score")]
        self.texts = [tuple(row) for row in zip(*(dataset[c] for c in columns))]

    def __len__(self) -> int:
        return self.mix.steps_per_epoch(self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng(self.seed + getattr(self, "epoch", 0))
        offsets = self.mix.offsets()
        queues = [deque() for _ in self.mix.sizes]
        probabilities = np.asarray(self.mix.probabilities, dtype=float)
        for domain in rng.choice(len(queues), size=len(self), p=probabilities / probabilities.sum()):
            yield self._batch(queues[domain], offsets[domain], self.mix.sizes[domain], rng)

    def _batch(self, queue: deque, start: int, size: int, rng: np.random.Generator) -> list[int]:
        """The next batch of one domain: rows in shuffled order, a row with a text already in the batch left for later."""
        wanted = min(self.batch_size, size)
        batch: list[int] = []
        seen: set[str] = set()
        skipped: list[int] = []
        refills = 0
        while len(batch) < wanted:
            if not queue:
                if refills == 2:  # every row of the domain shares a text with the batch: a short batch
                    break
                skipped = []  # the new pass holds them again: the queue stays within two passes
                queue.extend((start + rng.permutation(size)).tolist())  # a new pass, reshuffled
                refills += 1
            index = queue.popleft()
            texts = self.texts[index]
            if seen.isdisjoint(texts) and index not in batch:
                batch.append(index)
                seen.update(texts)
            else:
                skipped.append(index)
        queue.extendleft(reversed(skipped))  # they lead the next batch of this domain
        return batch
