"""Train miniCOIL on a catalog alone: no labels, no GPU.

Why the catalog is enough: a word's contexts are the products that contain it. Stems in at least
``min_contexts`` products get a layer; up to ``max_contexts`` of their products (a seeded sample) are
embedded once by ``encoder`` (token embeddings of the word) and ``sentence_model`` (the whole title),
and the layers learn to put contexts the sentence model finds alike close together in ``dims``
dimensions (:mod:`sparsefit.minicoil.fit`). Every other word falls back to BM25's exact match.
With both roles on one model (the default, ``minilm-l6``) one forward pass gives both embeddings.

Example:
    >>> model = train_minicoil(catalog.texts, min_contexts=8, cache_dir=Path("runs/x/cache"))   # doctest: +SKIP
    >>> model.save("runs/x/minicoil")                                                          # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sparsefit.errors import SparsefitError
from sparsefit.minicoil.cache import cache_key, cached
from sparsefit.minicoil.contexts import TokenEmbedder
from sparsefit.minicoil.fit import FitSettings, fit_layers
from sparsefit.minicoil.model import MiniCoil
from sparsefit.minicoil.words import Analyzer

Progress = Callable[[str, int, int], None]  # (stage, done, total); stages: "embed" (texts), "fit" (words)
EMBED_CHUNK = 2048  # texts per embedding call: only the chosen contexts' vectors are kept between calls


def train_minicoil(
    texts: Sequence[str],
    *,
    encoder: str = "minilm-l6",
    sentence_model: str = "minilm-l6",
    min_contexts: int = 10,
    max_contexts: int = 200,
    dims: int = 4,
    seed: int = 13,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    k: float = 1.2,
    b: float = 0.75,
    max_seq_length: int = 128,
    batch_size: int = 64,
    fit: FitSettings | None = None,
    analyzer: Analyzer | None = None,
    device: str = "cpu",
    name: str = "minicoil",
) -> MiniCoil:
    """A miniCOIL model for the catalog ``texts`` (see the module docstring for what each setting does)."""
    texts = [str(t) for t in texts]
    _check(texts, min_contexts, max_contexts, dims, k, b)
    began = time.perf_counter()
    analyzer = analyzer or Analyzer()
    fit = fit or FitSettings()
    postings, frequencies, forms, avg_len = _count(texts, analyzer)
    candidates = sorted((s for s, docs in postings.items() if len(docs) >= min_contexts),
                        key=lambda s: (-len(postings[s]), s))
    rng = np.random.default_rng(seed)
    chosen: dict[int, set[int]] = defaultdict(set)  # text -> candidate words it is a context of
    for w, stem in enumerate(candidates):
        docs = postings[stem]
        picked = docs if len(docs) <= max_contexts else sorted(rng.choice(docs, size=max_contexts, replace=False).tolist())
        for d in picked:
            chosen[d].add(w)
    settings = {"encoder": encoder, "sentence_model": sentence_model, "max_seq_length": max_seq_length,
                "analyzer": analyzer.to_json(), "stopwords": sorted(analyzer.stopwords), "min_contexts": min_contexts,
                "max_contexts": max_contexts, "seed": seed, "version": 1}
    needed = sorted(chosen)

    def embed() -> dict[str, np.ndarray]:
        return _embed_contexts(texts, needed, chosen, candidates, analyzer, encoder, sentence_model,
                               max_seq_length, batch_size, device, progress)

    arrays = cached(cache_dir, cache_key(texts, settings), embed)
    embedded = time.perf_counter()
    word, order = arrays["word"], np.argsort(arrays["word"], kind="stable")
    bounds = np.searchsorted(word[order], np.arange(len(candidates) + 1))
    contexts = [order[bounds[w] : bounds[w + 1]] for w in range(len(candidates))]
    kept = [w for w in range(len(candidates)) if len(contexts[w]) >= max(min_contexts, 2)]  # cut-off words drop out
    done = [0]

    def fitted(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress("fit", done[0], len(kept))

    vectors = arrays["vectors"]
    layers = fit_layers(vectors, arrays["sentences"], [contexts[w] for w in kept], dims=dims,
                        sentence_of=arrays["text"], settings=fit, seed=seed, progress=fitted)
    weights = np.concatenate([np.zeros((1, vectors.shape[1], dims), np.float32), layers])
    finished = time.perf_counter()
    training = {"texts": len(texts), "candidates": len(candidates), "words": len(kept),
                "contexts": int(sum(len(contexts[w]) for w in kept)), "min_contexts": min_contexts,
                "max_contexts": max_contexts, "seed": seed, "fit": fit.to_json(),
                "seconds": {"embed": round(embedded - began, 1), "fit": round(finished - embedded, 1),
                            "total": round(finished - began, 1)}}
    return MiniCoil(weights, [candidates[w] for w in kept], analyzer, encoder, sentence_model, k=k, b=b,
                    avg_len=avg_len, max_seq_length=max_seq_length, document_count=len(texts),
                    frequencies=frequencies, forms=forms, training=training, name=name)


def _check(texts: list[str], min_contexts: int, max_contexts: int, dims: int, k: float, b: float) -> None:
    if not texts:
        raise SparsefitError("miniCOIL needs a catalog to train on, got no texts")
    if min_contexts < 2 or max_contexts < min_contexts:
        raise SparsefitError(f"min_contexts={min_contexts}, max_contexts={max_contexts}: a layer needs contexts to compare",
                             hint="use 2 <= min_contexts <= max_contexts")
    if not 1 <= dims <= 64:
        raise SparsefitError(f"dims={dims} is out of range", hint="miniCOIL uses 4; anything from 1 to 64 works")
    if not (k >= 0 and 0 <= b <= 1):
        raise SparsefitError(f"BM25 parameters out of range: k={k}, b={b}", hint="k >= 0, 0 <= b <= 1")


def _count(texts: list[str], analyzer: Analyzer) -> tuple[dict[str, list[int]], dict[str, int], dict[str, str], float]:
    """Per stem its texts; document frequencies; each stem's most frequent surface form; mean kept words per text."""
    postings: dict[str, list[int]] = defaultdict(list)
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for d, text in enumerate(texts):
        words = analyzer.words(text)
        total += len(words)
        for word in words:
            surface[word.stem][text[word.start : word.end].lower()] += 1
        for stem in dict.fromkeys(w.stem for w in words):
            postings[stem].append(d)
    frequencies = {stem: len(docs) for stem, docs in postings.items()}
    forms = {stem: min(c.items(), key=lambda item: (-item[1], item[0]))[0] for stem, c in surface.items()}
    return postings, frequencies, forms, max(total / len(texts), 1.0)


def _embed_contexts(texts: list[str], needed: list[int], chosen: dict[int, set[int]], candidates: list[str],
                    analyzer: Analyzer, encoder: str, sentence_model: str, max_seq_length: int, batch_size: int,
                    device: str, progress: Progress | None) -> dict[str, np.ndarray]:
    """The chosen (text, word) contexts' token vectors (float16) and their texts' sentence vectors."""
    embedder = TokenEmbedder.load(encoder, max_seq_length=max_seq_length, device=device)
    same = sentence_model == encoder
    ids = {stem: w for w, stem in enumerate(candidates)}
    vectors, words, rows = [], [], []
    sentences = np.zeros((len(needed), embedder.hidden_size), dtype=np.float16) if same else None
    done = 0
    for start in range(0, len(needed), EMBED_CHUNK):
        part = needed[start : start + EMBED_CHUNK]
        batch = embedder.embed([texts[d] for d in part], analyzer, batch_size=batch_size, sentences=same)
        w = np.fromiter((ids.get(s, -1) for s in batch.stems), dtype=np.int64, count=len(batch.stems))
        keep = np.fromiter((w[i] >= 0 and batch.seen[i] and w[i] in chosen[part[batch.text_of[i]]]
                            for i in range(len(w))), dtype=bool, count=len(w))
        vectors.append(batch.vectors[keep].astype(np.float16))
        words.append(w[keep])
        rows.append(batch.text_of[keep] + start)
        if sentences is not None and batch.sentences is not None:
            sentences[start : start + len(part)] = batch.sentences
        done += len(part)
        if progress is not None:
            progress("embed", done, len(needed))
    if not same:
        from sparsefit.models.dense import load_dense

        sentences = load_dense(sentence_model, device=device, max_seq_length=max_seq_length).encode(
            [texts[d] for d in needed], batch_size=batch_size).astype(np.float16)
    hidden = embedder.hidden_size
    return {"vectors": np.concatenate(vectors) if vectors else np.zeros((0, hidden), np.float16),
            "word": np.concatenate(words) if words else np.zeros(0, np.int64),
            "text": np.concatenate(rows) if rows else np.zeros(0, np.int64),
            "sentences": sentences if sentences is not None else np.zeros((0, hidden), np.float16)}
