"""Words as miniCOIL sees them: split, lowercased, stopwords dropped, Snowball-stemmed.

Why one place: training counts contexts per stem, encoding looks stems up in the vocabulary and
hashes the rest, and the explain view names them; all three must cut text the same way, and the
cut is saved with the model (language, stopwords, maximum length) so a loaded model cuts as it was
trained. A word is a run of letters or digits (``[^\\W_]+``, Unicode-aware), which is how BERT's
WordPiece pre-tokenizer splits on whitespace and punctuation; words keep their character offsets so
the transformer's subword tokens can be grouped back into them.

Example:
    >>> analyzer = Analyzer()
    >>> analyzer.stems("The Cordless Drills, 20V (2-pack)")
    ['cordless', 'drill', '20v', '2', 'pack']
    >>> [(w.stem, w.start, w.end) for w in analyzer.words("red apples")]
    [('red', 0, 3), ('appl', 4, 10)]
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from sparsefit.errors import SparsefitError

WORD = re.compile(r"[^\W_]+")
MAX_WORD_LENGTH = 40  # fastembed's miniCOIL drops longer tokens too


def english_stopwords() -> frozenset[str]:
    """NLTK's 179 English stopwords (as bm25s ships them; fastembed's miniCOIL uses an NLTK list too)."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


class Word(NamedTuple):
    """One kept word of a text: its stem and where its surface form sits in the text."""

    stem: str
    start: int
    end: int


@dataclass(frozen=True)
class Analyzer:
    """Split, lowercase, drop stopwords, stem (Snowball via PyStemmer) and cap the length."""

    language: str = "english"
    stopwords: frozenset[str] = field(default_factory=english_stopwords)
    max_length: int = MAX_WORD_LENGTH

    def __post_init__(self) -> None:
        import Stemmer

        if self.language not in Stemmer.algorithms():
            raise SparsefitError(f"no Snowball stemmer for language {self.language!r}",
                                 hint=f"use one of: {', '.join(sorted(Stemmer.algorithms()))}")

    @property
    def _local(self) -> threading.local:
        local = self.__dict__.get("_threads")
        if local is None:  # PyStemmer objects are not thread-safe: one per thread, with its own memo
            local = threading.local()
            object.__setattr__(self, "_threads", local)
        return local

    def stem(self, word: str) -> str:
        """The stem of one lowercased word (memoised: catalogs repeat their words)."""
        local = self._local
        memo = getattr(local, "memo", None)
        if memo is None:
            import Stemmer

            local.stemmer, local.memo = Stemmer.Stemmer(self.language), {}
            memo = local.memo
        found = memo.get(word)
        if found is None:
            found = local.stemmer.stemWord(word)
            if len(memo) < 1_000_000:
                memo[word] = found
        return found

    def words(self, text: str) -> list[Word]:
        """The kept words of ``text`` in order, repeats included (they count as BM25's term frequency)."""
        kept = []
        for match in WORD.finditer(text):
            lower = match.group().lower()
            if lower in self.stopwords:
                continue
            stem = self.stem(lower)
            if stem in self.stopwords or len(stem) > self.max_length:
                continue
            kept.append(Word(stem, match.start(), match.end()))
        return kept

    def stems(self, text: str) -> list[str]:
        """Just the stems of :meth:`words`."""
        return [w.stem for w in self.words(text)]

    def to_json(self) -> dict[str, object]:
        return {"language": self.language, "max_length": self.max_length}

    @classmethod
    def from_saved(cls, settings: dict[str, object], stopwords: Iterable[str]) -> Analyzer:
        """The analyzer a model was saved with (its stopword list comes from ``stopwords.txt``)."""
        return cls(language=str(settings.get("language", "english")), stopwords=frozenset(stopwords),
                   max_length=int(settings.get("max_length", MAX_WORD_LENGTH)))  # type: ignore[arg-type]
