"""Exclusion rules: when a query falls near anchor text A, results near anchor text B are removed.

A rule is a pair of anchor texts, encoded with the served model and scaled to unit length (Â, B̂).
A query *falls near A* when its cosine similarity with A is at least ``when_threshold`` and larger
than its similarity with B (so "mouse trap" does not fire the rule "computer mouse" → "mouse trap").
A product is *near B* when it leans to B rather than A: its score for the contrast vector B̂ − Â is
positive and at least ``exclude_ratio`` × the best such score (at most ``exclude_limit`` products).
Which rules fire is one sparse matrix product over all anchors; the products near every fired B
come from one batched search of the contrast vectors, whatever the number of rules; they then
leave the main search through its id filter.

Rules are stored with the collection (in its metadata blob), so they follow the index to a server.

Example:
    >>> rule = ExclusionRule.new("computer mouse", "mouse trap for rodents")
    >>> rule.when, rule.exclude, rule.when_threshold
    ('computer mouse', 'mouse trap for rodents', 0.3)
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError

if TYPE_CHECKING:
    from sparsefit.index import SparseIndex
    from sparsefit.models import Encoder

META_KEY = "exclusion_rules"
MAX_ANCHOR_CHARS = 200  # an anchor is a query-like text; a 1 MB anchor once slowed every search
MAX_RULES = 500  # firing is one product over all anchors: cheap, but the metadata blob grows with every rule


@dataclass(frozen=True)
class ExclusionRule:
    """When the query is near ``when``, remove results near ``exclude``."""

    id: str
    when: str
    exclude: str
    when_threshold: float = 0.3
    exclude_ratio: float = 0.5
    exclude_limit: int = 200
    created: float = field(default_factory=time.time)

    @classmethod
    def new(cls, when: str, exclude: str, **options: Any) -> ExclusionRule:
        """A rule with a fresh id, validated."""
        rule = cls(id=uuid.uuid4().hex[:12], when=str(when).strip(), exclude=str(exclude).strip(), **options)
        rule.validate()
        return rule

    def validate(self) -> None:
        if not self.when or not self.exclude:
            raise SparsefitError("an exclusion rule needs two non-empty anchor texts",
                                 hint='give e.g. when="computer mouse", exclude="mouse trap"')
        longest = max(len(self.when), len(self.exclude))
        if longest > MAX_ANCHOR_CHARS:
            raise SparsefitError(f"an exclusion rule's anchor text is {longest:,} characters long",
                                 hint=f"anchors are short, query-like texts: at most {MAX_ANCHOR_CHARS} characters")
        if self.when.casefold() == self.exclude.casefold():
            raise SparsefitError("an exclusion rule's two anchor texts are the same", hint="use two different texts")
        if not 0 < self.when_threshold <= 1:
            raise SparsefitError(f"when_threshold must be in (0, 1], got {self.when_threshold}",
                                 hint="it is a cosine similarity; 0.3 is a good start")
        if not 0 < self.exclude_ratio <= 1:
            raise SparsefitError(f"exclude_ratio must be in (0, 1], got {self.exclude_ratio}",
                                 hint="it is a share of the anchor's best score; 0.5 is a good start")
        if not 1 <= self.exclude_limit <= 10_000:
            raise SparsefitError(f"exclude_limit must be 1 to 10000, got {self.exclude_limit}")


@dataclass
class FiredRule:
    """A rule that fired for one query, with how near the query was and what it removed."""

    rule: ExclusionRule
    similarity: float
    excluded: set[str]

    def summary(self) -> dict[str, Any]:
        return {"id": self.rule.id, "when": self.rule.when, "exclude": self.rule.exclude,
                "similarity": round(self.similarity, 4), "excluded_products": len(self.excluded)}


class RuleBook:
    """The exclusion rules of one collection, with their anchors encoded by one model.

    Example:
        >>> book = RuleBook(index, encoder)                      # doctest: +SKIP
        >>> book.add(ExclusionRule.new("computer mouse", "mouse trap"))   # doctest: +SKIP
        >>> fired = book.fire(encoder.encode_queries(["wireless mouse"]), index)   # doctest: +SKIP
    """

    def __init__(self, index: SparseIndex, encoder: Encoder, encode_lock: threading.Lock | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.encode_lock = encode_lock or threading.Lock()  # the service's: one forward pass at a time
        self._lock = threading.Lock()
        raw = index.get_metadata().get(META_KEY, [])
        self.rules: list[ExclusionRule] = [ExclusionRule(**r) for r in raw]
        self._encode()

    def _encode(self) -> None:
        """Normalised anchor vectors of every rule: rows of ``when`` and ``exclude`` in rule order."""
        self._when = self._exclude = None
        if self.rules:
            self._when, self._exclude = self._anchors(self.rules)

    def _anchors(self, rules: list[ExclusionRule]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        with self.encode_lock:
            when = self.encoder.encode_queries([r.when for r in rules])
            exclude = self.encoder.encode_queries([r.exclude for r in rules])
        return _unit_rows(when), _unit_rows(exclude)

    def _save(self) -> None:
        meta = self.index.get_metadata()
        meta[META_KEY] = [asdict(r) for r in self.rules]
        self.index.set_metadata(meta)

    def list(self) -> list[ExclusionRule]:
        return list(self.rules)

    def add(self, rule: ExclusionRule) -> ExclusionRule:
        """Store ``rule``; only its own two anchors are encoded (the others keep their vectors)."""
        rule.validate()
        when, exclude = self._anchors([rule])  # outside the lock: searches go on meanwhile
        with self._lock:
            if len(self.rules) >= MAX_RULES:
                raise SparsefitError(f"the collection has {len(self.rules)} exclusion rules, the most it keeps",
                                     hint="remove rules that no longer matter first")
            if any(r.when.casefold() == rule.when.casefold() and r.exclude.casefold() == rule.exclude.casefold()
                   for r in self.rules):
                raise SparsefitError(f'the rule "{rule.when}" → "{rule.exclude}" exists already',
                                     hint="remove it first to change its thresholds")
            self.rules.append(rule)
            if self._when is None:
                self._when, self._exclude = when, exclude
            else:
                self._when = sp.vstack([self._when, when], format="csr")
                self._exclude = sp.vstack([self._exclude, exclude], format="csr")
            self._save()
        return rule

    def remove(self, rule_id: str) -> ExclusionRule:
        with self._lock:
            for i, r in enumerate(self.rules):
                if r.id == rule_id:
                    del self.rules[i]
                    keep = [j for j in range(len(self.rules) + 1) if j != i]
                    if self.rules:
                        self._when, self._exclude = self._when[keep], self._exclude[keep]
                    else:
                        self._when = self._exclude = None
                    self._save()
                    return r
        raise KeyError(rule_id)

    def fire(self, query_vector: sp.csr_matrix, index: SparseIndex | None = None) -> list[FiredRule]:
        """Rules whose ``when`` anchor is near the query, each with the ids near its ``exclude`` anchor.

        One matrix product decides which rules fire; one batched search finds what they exclude.
        """
        with self._lock:
            rules, when, exclude = list(self.rules), self._when, self._exclude
        if not rules or query_vector.nnz == 0:
            return []
        query = _unit_rows(query_vector)
        near_when = (query @ when.T).toarray().ravel()
        near_exclude = (query @ exclude.T).toarray().ravel()
        thresholds = np.array([r.when_threshold for r in rules])
        fired = np.flatnonzero((near_when >= thresholds - 1e-9) & (near_when > near_exclude)).tolist()
        if not fired:
            return []
        contrast = (exclude[fired] - when[fired]).tocsr()  # B̂ − Â: positive for products leaning to B
        contrast.eliminate_zeros()
        limit = max(rules[i].exclude_limit for i in fired)
        hits = (index or self.index).search_batch(contrast, limit=limit, with_payload=False)
        out = []
        for i, found in zip(fired, hits):
            rule = rules[i]
            best = found[0].score if found else 0.0
            near = {h.product_id for h in found[: rule.exclude_limit] if h.score > 0 and h.score >= rule.exclude_ratio * best}
            out.append(FiredRule(rule, float(near_when[i]), near))
        return out


def _unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.diags(1.0 / norms).astype(np.float32) @ m
