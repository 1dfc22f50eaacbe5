"""Offline query generation: short, realistic search queries made from each product's own text.

No model and no network: for every product we sample a few of its words, weighted by how
distinctive they are in this catalog (IDF), and shape them like what people type into a search box:
a product type with one or two qualifiers, a brand with a type, a few dropped or reordered words, an
occasional typo. Every query is deterministic from the seed and the product's position, is never a
copy of the product's title, and has its product as the positive (the other products in a training
batch are the negatives: self-supervised pairs from the catalog itself).

Example:
    >>> from sparsefit.data import load_catalog
    >>> catalog = load_catalog("examples/catalog.csv")                  # doctest: +SKIP
    >>> queries = generate_offline(catalog, per_product=2, seed=13)     # doctest: +SKIP
    >>> queries[0].query, queries[0].product_id, queries[0].source      # doctest: +SKIP
    ('cordless drill driver', 'PT-0005', 'offline')
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sparsefit.data import Catalog

WORD_RE = re.compile(r"[a-z0-9]+(?:[-'./][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with without your you our this that these "
    "those its per x w/ w incl including only set pack pc pcs piece pieces item items new".split()
)
KEYBOARD_NEIGHBOURS = {
    c: n for row in ("qwertyuiop", "asdfghjkl", "zxcvbnm") for i, c in enumerate(row)
    for n in [row[max(0, i - 1)] + row[min(len(row) - 1, i + 1)]]
}
KINDS = ("type", "keywords", "attribute", "drop")
CUT_RE = re.compile(r"\s(?:in|with|for|by)\s|[(,]", re.IGNORECASE)


@dataclass(frozen=True)
class GeneratedQuery:
    """One generated query and the product it was made from (its positive)."""

    query: str
    product_id: str
    source: str  # "offline" or "llm:<model>"
    kind: str  # how it was made: type, keywords, attribute, drop, (+typo); "llm" for the LLM


def words_of(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (keeps 1/2, 20v, strong-tie together).

    Example:
        >>> words_of("Simpson Strong-Tie 12-Gauge Angle, 1/2 in.")
        ['simpson', 'strong-tie', '12-gauge', 'angle', '1/2', 'in']
    """
    return WORD_RE.findall(html.unescape(text).casefold())


def core_words(text: str) -> list[str]:
    """The words before the first " in ", " with ", " for ", "(" or "," (after two words): where a title names the product type.

    Example:
        >>> core_words("Delta Vero 1-Handle Shower Faucet Trim Kit in Chrome (Valve Not Included)")[-3:]
        ['faucet', 'trim', 'kit']
    """
    words = words_of(CUT_RE.split(html.unescape(text), maxsplit=1)[0]) if CUT_RE.search(text) else []
    return words if len(words) >= 2 else words_of(text)


def normalized(text: str) -> str:
    """Words joined by single spaces: what makes two queries (or a query and a title) the same."""
    return " ".join(words_of(text))


class OfflineQueryGenerator:
    """Makes queries for the products of a catalog; see the module docstring.

    ``text_field`` is the catalog column the words come from (default: the first text field, usually
    the title); short categorical columns (brand, category, type…) are used as attributes.
    """

    def __init__(self, catalog: Catalog, *, seed: int = 13, typo_rate: float = 0.08, text_field: str | None = None) -> None:
        self.catalog = catalog
        self.seed = seed
        self.typo_rate = typo_rate
        field = text_field or (catalog.text_fields[0] if catalog.text_fields else None)
        if field is not None and field in catalog.payload.columns:
            self.sources = [str(v) if v == v and v is not None else "" for v in catalog.payload[field].tolist()]
        else:
            self.sources = list(catalog.texts)
        self.words = [words_of(text) for text in self.sources]
        self.cores = [[w for w in core_words(text) if w not in STOPWORDS] for text in self.sources]
        df = Counter(w for ws in self.words for w in set(ws))
        n = max(1, len(self.words))
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        self.attributes = _attribute_columns(catalog, exclude={field, catalog.id_field})

    def for_product(self, i: int, per_product: int) -> list[GeneratedQuery]:
        """``per_product`` distinct queries for the product at position ``i`` (fewer if its text is too short)."""
        rng = np.random.default_rng([self.seed, i])
        title = normalized(self.sources[i])
        words = [w for w in dict.fromkeys(self.words[i]) if w not in STOPWORDS and len(w) > 1]
        out: list[GeneratedQuery] = []
        seen = {title, ""}
        attempts = 0
        while len(out) < per_product and attempts < 8 * per_product:
            attempts += 1
            kind = KINDS[int(rng.choice(len(KINDS), p=[0.35, 0.3, 0.15, 0.2]))]
            if kind == "attribute" and not self.attributes:
                kind = "drop"
            words_picked = self._shape(kind, words, i, rng)
            if not words_picked:
                continue
            query = " ".join(words_picked)
            if rng.random() < self.typo_rate:
                query, typo = _with_typo(query, rng)
                kind = f"{kind}+typo" if typo else kind
            key = normalized(query)
            if key in seen or key == title:
                continue
            seen.add(key)
            out.append(GeneratedQuery(query, self.catalog.ids[i], "offline", kind))
        return out

    def generate(self, per_product: int = 2, progress: Callable[[int], None] | None = None) -> list[GeneratedQuery]:
        """Queries for every product, in catalog order."""
        out: list[GeneratedQuery] = []
        for i in range(len(self.catalog)):
            out.extend(self.for_product(i, per_product))
            if progress is not None and (i + 1) % 1000 == 0:
                progress(1000)
        if progress is not None:
            progress(len(self.catalog) % 1000)
        return out

    # -- shapes ------------------------------------------------------------------------------
    def _weights(self, words: Sequence[str]) -> np.ndarray:
        weights = np.array([self.idf.get(w, 1.0) * _word_shape_factor(w) for w in words], dtype=float)
        return weights / weights.sum() if weights.sum() > 0 else np.full(len(words), 1 / len(words))

    def _shape(self, kind: str, words: list[str], i: int, rng: np.random.Generator) -> list[str]:
        if not words:
            return []
        if kind == "type":  # the product type ends the title's core ("… Faucet Trim Kit in Chrome"); add a qualifier
            core = [w for w in self.cores[i] if len(w) >= 3 and w.replace("-", "").isalpha()] or words
            head = core[-int(rng.integers(1, 3)):]
            rest = [w for w in words if w not in head]
            if rest and rng.random() < 0.7:
                qualifier = rest[int(rng.choice(len(rest), p=self._weights(rest)))]
                return [qualifier, *head]
            return head
        if kind == "keywords":  # 2-4 distinctive words, usually in title order
            n = min(len(words), int(rng.integers(2, 5)))
            picked = sorted(rng.choice(len(words), size=n, replace=False, p=self._weights(words)))
            chosen = [words[j] for j in picked]
            if rng.random() < 0.25:
                rng.shuffle(chosen)
            return chosen
        if kind == "attribute" and self.attributes:  # brand/category + a distinctive word
            values = [str(self.catalog.payload[c].iloc[i]) for c in self.attributes]
            values = [v for v in values if v and v.lower() != "nan"]
            if values:
                value = normalized(values[int(rng.integers(len(values)))])
                word = words[int(rng.choice(len(words), p=self._weights(words)))]
                return [value, word] if word not in value.split() else [value]
        # drop: the title without about half of its words (codes and sizes go first)
        keep = [w for w in words if not _is_code(w) and rng.random() < 0.55]
        return keep[:5] if len(keep) >= 1 else words[-1:]


def generate_offline(
    catalog: Catalog, *, per_product: int = 2, seed: int = 13, typo_rate: float = 0.08,
    text_field: str | None = None, progress: Callable[[int], None] | None = None,
) -> list[GeneratedQuery]:
    """Offline queries for every product of ``catalog``; see :class:`OfflineQueryGenerator`."""
    generator = OfflineQueryGenerator(catalog, seed=seed, typo_rate=typo_rate, text_field=text_field)
    return generator.generate(per_product, progress=progress)


def _is_code(word: str) -> bool:
    """Model numbers and codes (letters mixed with digits, 5+ characters): rarely typed by shoppers."""
    return len(word) >= 5 and any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def _word_shape_factor(word: str) -> float:
    if _is_code(word):
        return 0.15
    if word.replace(".", "").replace("/", "").isdigit():
        return 0.3
    return 1.0


def _attribute_columns(catalog: Catalog, exclude: set) -> list[str]:
    """Short categorical text columns (brand, category, type…) of the catalog."""
    out = []
    for name in catalog.payload.columns:
        if name in exclude:
            continue
        column = catalog.payload[name]
        if not (pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)):
            continue
        values = column.dropna().astype(str)
        if len(values) == 0 or values.str.len().mean() > 30:
            continue
        if values.nunique() <= max(2, 0.5 * len(values)) and values.nunique() > 1:
            out.append(str(name))
    return out


def _with_typo(query: str, rng: np.random.Generator) -> tuple[str, bool]:
    """One realistic typo (swap, drop, double or neighbouring key) in one word of 5+ letters."""
    words = query.split(" ")
    candidates = [j for j, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return query, False
    j = candidates[int(rng.integers(len(candidates)))]
    original = words[j]
    for _ in range(5):  # swapping two equal letters changes nothing: try again
        w, k, op = original, int(rng.integers(1, len(original) - 1)), int(rng.integers(4))
        if op == 0:
            w = w[:k] + w[k + 1] + w[k] + w[k + 2:]
        elif op == 1:
            w = w[:k] + w[k + 1:]
        elif op == 2:
            w = w[:k] + w[k] + w[k:]
        else:
            near = KEYBOARD_NEIGHBOURS.get(w[k], w[k])
            w = w[:k] + near[int(rng.integers(len(near)))] + w[k + 1:]
        if w != original:
            break
    else:
        return query, False
    words[j] = w
    return " ".join(words), True
