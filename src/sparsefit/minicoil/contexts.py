"""Contextual word embeddings: one transformer pass gives every kept word's meaning in its text.

Why here: training (a word's contexts) and encoding (a product's or a query's words) need the same
thing, the mean of the subword token embeddings of each stem in a text, over all its occurrences
(as fastembed's miniCOIL averages per word and text). The same forward pass also gives the sentence
embedding (the model's own pooling), so when one model plays both roles the catalog is run once.

Words the transformer never saw (cut off by ``max_seq_length``) keep their count but get no vector:
the encoder treats them as exact-match words.

Example:
    >>> from sparsefit.minicoil.words import Analyzer
    >>> embedder = TokenEmbedder.load("minilm-l6")                    # doctest: +SKIP
    >>> batch = embedder.embed(["red apple", "apple iphone"], Analyzer())  # doctest: +SKIP
    >>> batch.stems, batch.vectors.shape                                 # doctest: +SKIP
    (['red', 'appl', 'appl', 'iphon'], (4, 384))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sparsefit.minicoil.words import Analyzer


@dataclass
class WordBatch:
    """The words of a batch of texts, flat: pair ``i`` is stem ``stems[i]`` of text ``text_of[i]``."""

    text_of: np.ndarray  # (pairs,) int64: which text
    stems: list[str]
    counts: np.ndarray  # (pairs,) int32: occurrences of the stem in the text
    vectors: np.ndarray  # (pairs, hidden) float32: mean token embedding; rows of zeros where seen is False
    seen: np.ndarray  # (pairs,) bool: the transformer saw at least one token of the word
    lengths: np.ndarray  # (texts,) int32: kept words per text, repeats included (BM25's document length)
    sentences: np.ndarray | None  # (texts, hidden) float32, L2-normalised, when asked for


class TokenEmbedder:
    """A sentence-transformers model read for its token embeddings (and its sentence embedding)."""

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name

    @classmethod
    def load(cls, name: str, *, max_seq_length: int = 128, device: str = "cpu") -> TokenEmbedder:
        """An offline alias (``minilm-l6``), a sentence-transformers folder or a hub id."""
        from sparsefit.models.dense import load_dense

        return cls(load_dense(name, device=device, max_seq_length=max_seq_length).model, name)

    @property
    def hidden_size(self) -> int:
        size = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(size())

    @property
    def device(self) -> str:
        return str(self.model.device)

    def embed(self, texts: Sequence[str], analyzer: Analyzer, *, batch_size: int = 64, sentences: bool = False,
              progress: Callable[[int], None] | None = None) -> WordBatch:
        """The words of ``texts`` with their contextual vectors, in the order of ``texts``; ``progress(n)``
        after each batch of ``n`` texts."""
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
        parts = []
        for s in range(0, len(texts), batch_size):
            positions = order[s : s + batch_size]
            parts.append((self._embed_batch([texts[i] for i in positions], positions, analyzer, sentences), positions))
            if progress is not None:
                progress(len(positions))
        return _concatenate(parts, len(texts), self.hidden_size, sentences)

    def _embed_batch(self, texts: list[str], positions: np.ndarray, analyzer: Analyzer, sentences: bool) -> WordBatch:
        tokenizer = self.model.tokenizer
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=self.model.max_seq_length,
                            return_tensors="pt", return_offsets_mapping=True)
        offsets = encoded.pop("offset_mapping").numpy()
        mask = encoded["attention_mask"].numpy().astype(bool)
        width = offsets.shape[1]
        text_of, stems, counts, lengths = [], [], [], []
        token_rows, token_groups = [], []
        for i, text in enumerate(texts):
            words = analyzer.words(text)
            lengths.append(len(words))
            group_of: dict[str, int] = {}
            word_group = np.empty(len(words), dtype=np.int64)
            for w, word in enumerate(words):
                g = group_of.get(word.stem)
                if g is None:
                    g = group_of[word.stem] = len(stems)
                    stems.append(word.stem)
                    text_of.append(positions[i])
                    counts.append(0)
                counts[g] += 1
                word_group[w] = g
            if not words:
                continue
            starts = np.fromiter((w.start for w in words), dtype=np.int64, count=len(words))
            ends = np.fromiter((w.end for w in words), dtype=np.int64, count=len(words))
            begin, finish = offsets[i, :, 0], offsets[i, :, 1]
            real = mask[i] & (finish > begin)  # special tokens and padding have empty spans
            at = np.searchsorted(starts, begin, side="right") - 1
            inside = real & (at >= 0) & (begin < ends[np.clip(at, 0, None)])
            token_rows.append(i * width + np.flatnonzero(inside))
            token_groups.append(word_group[at[inside]])
        features = {key: value.to(self.model.device) for key, value in encoded.items()}
        with torch.inference_mode():
            out = self.model(features)
        hidden = out["token_embeddings"].float().reshape(len(texts) * width, -1)
        vectors = torch.zeros(len(stems), hidden.shape[1], device=hidden.device)
        tokens = torch.zeros(len(stems), device=hidden.device)
        if token_rows:
            rows = torch.from_numpy(np.concatenate(token_rows)).to(hidden.device)
            groups = torch.from_numpy(np.concatenate(token_groups)).to(hidden.device)
            vectors.index_add_(0, groups, hidden[rows])
            tokens.index_add_(0, groups, torch.ones_like(groups, dtype=torch.float32))
        seen = tokens > 0
        vectors[seen] /= tokens[seen, None]
        sentence = None
        if sentences:
            sentence = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1).cpu().numpy()
        return WordBatch(np.asarray(text_of, dtype=np.int64), stems, np.asarray(counts, dtype=np.int32),
                         vectors.cpu().numpy(), seen.cpu().numpy(), np.asarray(lengths, dtype=np.int32), sentence)


def _concatenate(parts: list[tuple[WordBatch, np.ndarray]], texts: int, hidden: int, sentences: bool) -> WordBatch:
    """One batch from per-batch parts (each with its texts' positions), in the callers' text order."""
    lengths = np.zeros(texts, dtype=np.int32)
    sentence = np.zeros((texts, hidden), dtype=np.float32) if sentences else None
    for part, positions in parts:
        lengths[positions] = part.lengths
        if sentence is not None and part.sentences is not None:
            sentence[positions] = part.sentences
    if not parts:
        return WordBatch(np.zeros(0, np.int64), [], np.zeros(0, np.int32), np.zeros((0, hidden), np.float32),
                         np.zeros(0, bool), lengths, sentence)
    text_of = np.concatenate([p.text_of for p, _ in parts])
    order = np.argsort(text_of, kind="stable")  # pairs grouped by text, in text order
    stems = [s for p, _ in parts for s in p.stems]
    return WordBatch(text_of[order], [stems[i] for i in order], np.concatenate([p.counts for p, _ in parts])[order],
                     np.concatenate([p.vectors for p, _ in parts])[order],
                     np.concatenate([p.seen for p, _ in parts])[order], lengths, sentence)
