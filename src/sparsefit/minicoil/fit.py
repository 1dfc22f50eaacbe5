"""Fit every word's sense layer at once, batched over words: a closed-form start, then Qdrant's triplet loss.

Why batched: a catalog has thousands of vocabulary words with a few hundred contexts each; one small
optimisation per word in a Python loop would spend its time in the interpreter. Words are packed
into chunks (words × contexts × hidden) and a chunk's layers are solved and stepped together
(``bmm`` of ``[words, contexts, hidden]`` by ``[words, hidden, dims]``).

1. Targets (distance matching): the sentence cosines ``S`` of a word's contexts, factored to ``dims``
   dimensions (the top eigenvectors of ``S`` scaled by the roots of their eigenvalues, rows made unit
   length): points whose cosines approximate ``S`` as closely as ``dims`` dimensions allow. A
   one-sense word's contexts are alike and land together; two senses land apart.
2. The layer: ridge regression from the word's token vectors to ``atanh(0.75 · target)`` (solved in
   the dual, ``contexts × contexts``: cheaper than ``hidden × hidden`` when contexts are fewer).
3. Optionally ``steps`` of the triplet loss Qdrant describes for miniCOIL: for an anchor context and two
   others that the sentence model orders (``p`` closer than ``n`` by a gap of at least ``min_gap``),
   ``relu(gap − (cos(a,p) − cos(a,n)))`` on the 4-d meanings.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> vectors = rng.normal(size=(6, 8)).astype(np.float32)
    >>> sentences = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    >>> fit_layers(vectors, sentences, [np.arange(6)], dims=2, settings=FitSettings(steps=5)).shape
    (1, 8, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class FitSettings:
    """How the layers are fitted (saved with the model's training record)."""

    ridge: float = 1.0  # regularisation of the closed-form layer, relative to the token vectors' variance
    steps: int = 0  # triplet-loss steps after the closed form (0: the closed form alone)
    learning_rate: float = 0.05
    samples: int = 4  # (positive, negative) pairs per anchor per step
    min_gap: float = 0.1  # skip triplets whose sentence similarities differ by less
    chunk_cells: int = 65_536  # words × contexts per chunk: bounds memory (cells × hidden × 4 bytes, ×~3)

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def fit_layers(vectors: np.ndarray, sentences: np.ndarray, contexts: Sequence[np.ndarray], *, dims: int = 4,
               sentence_of: np.ndarray | None = None, settings: FitSettings = FitSettings(), seed: int = 13,
               progress: Callable[[int], None] | None = None) -> np.ndarray:
    """One ``hidden × dims`` layer per word; ``contexts[w]`` holds the rows of ``vectors`` (token vectors of
    word ``w``, one per context); row ``r``'s context has the unit sentence vector ``sentences[sentence_of[r]]``
    (``sentence_of`` None: ``sentences[r]``). ``progress(n)`` after each chunk of ``n`` words. Returns float32
    ``(words, hidden, dims)``."""
    if sentence_of is None:
        sentence_of = np.arange(len(vectors))
    hidden = vectors.shape[1]
    layers = np.zeros((len(contexts), hidden, dims), dtype=np.float32)
    generator = torch.Generator().manual_seed(seed)
    order = sorted(range(len(contexts)), key=lambda w: -len(contexts[w]))  # similar sizes per chunk: little padding
    start = 0
    while start < len(order):
        width = max(len(contexts[order[start]]), dims)
        count = max(1, settings.chunk_cells // max(width, 1))
        chunk = [w for w in order[start : start + count] if 4 * len(contexts[w]) >= 3 * width]  # solves are cubic:
        chunk = chunk or order[start : start + 1]  # a chunk's words pad to its widest, so keep their sizes close
        layers[chunk] = _fit_chunk(vectors, sentences, sentence_of, [contexts[w] for w in chunk], width, dims,
                                   settings, generator)
        start += len(chunk)
        if progress is not None:
            progress(len(chunk))
    return layers


def _fit_chunk(vectors: np.ndarray, sentences: np.ndarray, sentence_of: np.ndarray, contexts: list[np.ndarray],
               width: int, dims: int, settings: FitSettings, generator: torch.Generator) -> np.ndarray:
    words = len(contexts)
    rows = np.zeros((words, width), dtype=np.int64)
    sizes = np.array([len(c) for c in contexts], dtype=np.int64)
    for w, c in enumerate(contexts):
        rows[w, : len(c)] = c
    valid = torch.from_numpy(np.arange(width)[None, :] < sizes[:, None])
    x = torch.from_numpy(vectors[rows.ravel()].astype(np.float32)).reshape(words, width, -1) * valid[..., None]
    scale = (x.norm(dim=-1).sum(1) / torch.from_numpy(sizes).clamp(min=1)).clamp(min=1e-6)[:, None, None]
    x = x / scale  # unit-size inputs: one learning rate suits every model; folded back into the layers at the end
    s = torch.from_numpy(sentences[sentence_of[rows.ravel()]].astype(np.float32)).reshape(words, width, -1)
    similar = torch.bmm(s, s.transpose(1, 2))  # (words, width, width) sentence cosines
    weights = _closed_form(x, similar, valid, dims, settings.ridge)
    if settings.steps:
        weights = _triplet_steps(x, similar, valid, torch.from_numpy(sizes), weights, settings, generator)
    return (weights / scale).numpy()


def _closed_form(x: torch.Tensor, similar: torch.Tensor, valid: torch.Tensor, dims: int, ridge: float) -> torch.Tensor:
    """Layers whose outputs point where the factored sentence cosines put each context (steps 1 and 2)."""
    words, width, _ = x.shape
    inside = (valid[:, :, None] & valid[:, None, :]).float()
    values, vectors = torch.linalg.eigh(similar * inside)  # ascending eigenvalues
    points = vectors[..., -dims:] * values[:, None, -dims:].clamp(min=0).sqrt()
    targets = torch.atanh(0.75 * torch.nn.functional.normalize(points, dim=-1)) * valid[..., None]
    gram = torch.bmm(x, x.transpose(1, 2))
    sizes = valid.sum(1).clamp(min=1)
    mean = x.sum(1, keepdim=True) / sizes[:, None, None]
    spread = (((x - mean) ** 2).sum(-1) * valid).sum(1) / sizes
    strength = ridge * spread  # relative to how much the contexts' token vectors differ, not to their common part
    eye = torch.eye(width).expand(words, width, width)
    dual = torch.linalg.solve(gram + strength[:, None, None].clamp(min=1e-4) * eye, targets)  # x has unit mean norm
    return torch.bmm(x.transpose(1, 2), dual)


def _triplet_steps(x: torch.Tensor, similar: torch.Tensor, valid: torch.Tensor, sizes: torch.Tensor,
                   start: torch.Tensor, settings: FitSettings, generator: torch.Generator) -> torch.Tensor:
    """Step 3: Qdrant's triplet loss with the sentence gap as margin, all words of the chunk at once."""
    words, width, _ = x.shape
    dims = start.shape[2]
    weights = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([weights], lr=settings.learning_rate / x.shape[-1] ** 0.5)
    count = sizes[:, None, None].float()
    base = (torch.arange(words) * width)[:, None, None]
    anchor = torch.arange(width)[None, :, None]
    for _ in range(settings.steps):
        p = (torch.rand(words, width, settings.samples, generator=generator) * count).long()
        n = (torch.rand(words, width, settings.samples, generator=generator) * count).long()
        sim_p, sim_n = torch.gather(similar, 2, p), torch.gather(similar, 2, n)
        swap = sim_p < sim_n  # order each pair so that p is the closer one in the sentence space
        p, n = torch.where(swap, n, p), torch.where(swap, p, n)
        gap = (sim_p - sim_n).abs()
        use = valid[:, :, None] & (p != anchor) & (n != anchor) & (gap >= settings.min_gap)
        meaning = torch.nn.functional.normalize(torch.tanh(torch.bmm(x, weights)), dim=-1).reshape(words * width, dims)
        a = meaning.reshape(words, width, 1, dims)
        cos_p = (a * meaning[base + p]).sum(-1)
        cos_n = (a * meaning[base + n]).sum(-1)
        loss = (torch.relu(gap - (cos_p - cos_n)) * use).sum() / use.sum().clamp(min=1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return weights.detach()
