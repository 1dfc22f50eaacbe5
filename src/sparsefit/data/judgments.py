"""Relevance judgments (query, product id, label), loaded and checked; the label schemes that turn labels
into gains live in :mod:`sparsefit.data.labels`.

A blank label is an error (or, with ``on_invalid="skip"``, a counted skip), never a zero. Products
missing from the catalog are dropped and counted, unless more than half of the judgments are missing,
which means the id column is wrong: that is an error.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "j.csv"
    >>> _ = path.write_text("query,product_id,esci_label\\nred mug,p1,E\\nred mug,p2,S\\nlamp,p3,I\\n")
    >>> j = load_judgments(path)
    >>> j.scheme.name, j.gains.tolist(), j.keys()
    ('esci', [1.0, 0.1, 0.0], ['red mug', 'lamp'])
    >>> j.qrels()["red mug"]
    {'p1': 1.0, 'p2': 0.1}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from sparsefit.data.benchmark_formats import judgments_file, qrels_kind, qrels_scheme, qrels_table
from sparsefit.data.judgment_columns import find_columns
from sparsefit.data.judgment_rows import JudgmentRows
from sparsefit.data.labels import GAIN_EPS, LabelScheme, canonical_label, format_number
from sparsefit.data.raw import DEFAULT_MAX_DECOMPRESSED_BYTES
from sparsefit.data.readers import read_table
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

if TYPE_CHECKING:
    from sparsefit.data.catalog import Catalog


@dataclass(eq=False, repr=False)
class Judgments:
    """One entry per judgment row kept, in file order."""

    queries: list[str]  # whitespace collapsed, stripped, original case
    query_keys: list[str]  # case-folded: what groups and splits queries
    product_ids: list[str]
    labels: list[str]  # raw label text
    gains: np.ndarray  # float64
    scheme: LabelScheme
    source: Path
    query_field: str
    id_field: str
    label_field: str
    unknown_products: int = 0
    unknown_examples: list[str] = field(default_factory=list)
    conflict_examples: list[str] = field(default_factory=list)  # pairs judged twice with different labels
    skipped: dict[str, int] = field(default_factory=dict)
    rows: np.ndarray | None = None  # source row number of each judgment, for messages
    _texts: dict[str, str] | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.product_ids)

    def __repr__(self) -> str:
        return (f"Judgments({len(self)} judgments of {len(self.keys())} queries from {str(self.source)!r}, "
                f"scheme={self.scheme.describe()!r}, skipped={self.skipped!r}, unknown_products={self.unknown_products})")

    def keys(self) -> list[str]:
        """Distinct query keys in first-seen order."""
        return list(dict.fromkeys(self.query_keys))

    def query_text(self, key: str) -> str:
        """The query as first written in the file, for a query key."""
        if self._texts is None:
            self._texts = {}
            for k, text in zip(self.query_keys, self.queries):
                self._texts.setdefault(k, text)
        try:
            return self._texts[key]
        except KeyError:
            raise SparsefitError(f"query '{key}' is not in the judgments", file=self.source) from None

    def relevant(self) -> np.ndarray:
        """Boolean mask: gain at or above the scheme's relevant threshold."""
        return self.gains >= self.scheme.relevant_threshold - GAIN_EPS

    def keys_with_relevant(self) -> set[str]:
        """Query keys that have at least one relevant judgment (the ones nDCG can evaluate)."""
        return {k for k, r in zip(self.query_keys, self.relevant()) if r}

    def qrels(self, keys: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """query key -> {product id: gain} for every judged product (gain 0 included).

        Example:
            >>> j = Judgments(["a"], ["a"], ["p1"], ["1"], np.array([1.0]), LabelScheme("binary", {"1": 1.0, "0": 0.0}, 1.0),
            ...               Path("j.csv"), "query", "product_id", "label")
            >>> j.qrels()
            {'a': {'p1': 1.0}}
        """
        wanted = self._known(keys) if keys is not None else None
        out: dict[str, dict[str, float]] = {}
        for key, pid, gain in zip(self.query_keys, self.product_ids, self.gains.tolist()):
            if wanted is None or key in wanted:
                out.setdefault(key, {})[pid] = gain
        return out

    def subset(self, keys: Iterable[str]) -> Judgments:
        """The judgments of the given query keys only (an unknown key is an error)."""
        wanted = self._known(keys)
        picked = [i for i, key in enumerate(self.query_keys) if key in wanted]
        return self._take(picked)

    def binary_on(self, scheme: LabelScheme) -> Judgments:
        """Binary judgments (e.g. generated queries) restated on ``scheme``: relevant → its top gain, else 0.

        Lets binary training data sit with graded or ESCI test judgments in one run.

        Example:
            >>> binary = load_judgments("queries.jsonl")                             # doctest: +SKIP
            >>> binary.binary_on(detect_scheme(["1", "2", "3"])).gains.tolist()[:1]  # doctest: +SKIP
            [2.0]
        """
        if self.scheme.name != "binary":
            raise SparsefitError(f"only binary judgments can be restated on another scheme, not {self.scheme.describe()}",
                                 file=self.source, hint="load both files with the same --scheme")
        top = scheme.top_gain()
        gains = np.where(self.gains >= self.scheme.relevant_threshold, top, 0.0)
        return dataclasses.replace(self, gains=gains.astype(np.float64), scheme=scheme)

    def merge(self, other: Judgments) -> Judgments:
        """These judgments followed by ``other``'s (e.g. a separate test file); same scheme required.

        A (query, product) judged in both with the same gain is kept once; with different gains it is an error.
        """
        if (self.scheme.name, self.scheme.gains, self.scheme.low, self.scheme.relevant_threshold) != (
            other.scheme.name, other.scheme.gains, other.scheme.low, other.scheme.relevant_threshold
        ):
            raise SparsefitError(
                f"its label scheme ({other.scheme.describe()}) differs from that of {self.source} "
                f"({self.scheme.describe()}), so gains would not be comparable", file=other.source,
                hint="load both files with the same --scheme and --gain values (API: scheme=first.scheme)",
            )
        seen = {(k, p): i for i, (k, p) in enumerate(zip(self.query_keys, self.product_ids))}
        keep: list[int] = []
        repeated = 0
        for j, (key, pid) in enumerate(zip(other.query_keys, other.product_ids)):
            i = seen.get((key, pid))
            if i is None:
                keep.append(j)
            elif abs(self.gains[i] - other.gains[j]) <= GAIN_EPS:
                repeated += 1
            else:
                raise SparsefitError(
                    f"query '{other.queries[j]}' / product '{pid}' is labelled '{other.labels[j]}' here but "
                    f"'{self.labels[i]}' in {self.source} row {_row(self.rows, i)}",
                    file=other.source, row=_row(other.rows, j), hint="make the two files agree on that judgment",
                )
        added = other._take(keep)
        skipped = dict(self.skipped)
        for reason, n in [*other.skipped.items(), ("duplicate judgment", repeated)]:
            if n:
                skipped[reason] = skipped.get(reason, 0) + n
        rows = None if self.rows is None or added.rows is None else np.concatenate([self.rows, added.rows])
        return dataclasses.replace(
            self, queries=self.queries + added.queries, query_keys=self.query_keys + added.query_keys,
            product_ids=self.product_ids + added.product_ids, labels=self.labels + added.labels,
            gains=np.concatenate([self.gains, added.gains]), unknown_products=self.unknown_products + other.unknown_products,
            unknown_examples=(self.unknown_examples + other.unknown_examples)[:5], skipped=skipped, rows=rows,
        )

    def _known(self, keys: Iterable[str]) -> set[str]:
        wanted = set(keys)
        missing = wanted - set(self.query_keys)
        if missing:
            raise SparsefitError(f"{len(missing)} query keys are not in the judgments (e.g. '{sorted(missing)[0]}')",
                                 file=self.source, hint="use query keys from these judgments")
        return wanted

    def _take(self, picked: list[int]) -> Judgments:
        return dataclasses.replace(
            self, queries=[self.queries[i] for i in picked], query_keys=[self.query_keys[i] for i in picked],
            product_ids=[self.product_ids[i] for i in picked], labels=[self.labels[i] for i in picked],
            gains=self.gains[picked] if picked else np.zeros(0, dtype=np.float64),
            rows=None if self.rows is None else self.rows[picked] if picked else self.rows[:0],
        )


def _row(rows: np.ndarray | None, i: int) -> int | None:
    return None if rows is None else int(rows[i])


# -- loading --------------------------------------------------------------------------------------

def load_judgments(
    path: str | Path,
    catalog: Catalog | None = None,
    *,
    query_field: str | None = None,
    id_field: str | None = None,
    label_field: str | None = None,
    scheme: str | LabelScheme | None = None,
    gains: Mapping[str, float] | None = None,
    relevant_threshold: float | None = None,
    on_invalid: Literal["error", "skip"] = "error",
    on_unknown_product: Literal["drop", "error"] = "drop",
    on_conflict: Literal["mean", "first", "error"] = "mean",
    encoding: str | None = None,
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> Judgments:
    """Load judgments; columns and label scheme are detected unless given.

    ``scheme`` may be a name or a :class:`LabelScheme` (e.g. the training file's, so that a separate
    test file gets the very same gains). With a ``catalog``, judgments of unknown products are dropped
    and counted (``on_unknown_product="drop"``) or are an error; more than half unknown is always an error.
    A compressed file that expands past ``max_decompressed_bytes`` (None: no cap) is an error.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "j.tsv"
        >>> _ = path.write_text("id\\tproduct_uid\\tsearch_term\\trelevance\\n1\\t10\\tdeck\\t3\\n2\\t11\\tdeck\\t1\\n")
        >>> j = load_judgments(path)
        >>> (j.id_field, j.label_field, j.scheme.describe(), j.gains.tolist())
        ('product_uid', 'relevance', 'graded 1.0–3.0 (gain = label − 1.0, relevant ≥ 1.0 gain)', [2.0, 0.0])
    """
    if on_invalid not in ("error", "skip"):
        raise SparsefitError(f"on_invalid must be 'error' or 'skip', not '{on_invalid}'", hint="pass --on-invalid error or skip")
    if on_unknown_product not in ("drop", "error"):
        raise SparsefitError(f"on_unknown_product must be 'drop' or 'error', not '{on_unknown_product}'",
                             hint="pass --on-unknown-product drop or error")
    if on_conflict not in ("mean", "first", "error"):
        raise SparsefitError(f"on_conflict must be 'mean', 'first' or 'error', not '{on_conflict}'",
                             hint="pass --on-conflict mean, first or error")
    path = judgments_file(Path(path))  # a BEIR folder: its test qrels
    if qrels_kind(path, encoding) is not None:  # BEIR or TREC qrels: query ids resolved to their texts
        table = qrels_table(path, encoding)
        if scheme is None and not gains:
            scheme = qrels_scheme(table)  # graded qrels: gain = grade, relevant from 1
    else:
        table = read_table(path, encoding=encoding, max_decompressed_bytes=max_decompressed_bytes)
    qcol, pcol, lcol = find_columns(table, catalog, query_field, id_field, label_field)
    loader = JudgmentRows(table, qcol, pcol, lcol, on_invalid == "skip")
    loader.drop_blank()
    found_scheme = loader.label_scheme(scheme, gains, relevant_threshold)
    loader.apply_gains(found_scheme)
    unknown, examples = loader.drop_unknown_products(catalog, on_unknown_product) if catalog is not None else (0, [])
    loader.drop_duplicates(on_conflict)
    judgments = _assemble(loader, found_scheme, unknown, examples)
    _require_relevant(judgments, table)
    return judgments


def _assemble(rows: JudgmentRows, scheme: LabelScheme, unknown: int, examples: list[str]) -> Judgments:
    """The rows still kept, as :class:`Judgments` (built here, so the row checks need not know the container)."""
    keep = rows.keep
    return Judgments(
        queries=[rows.queries[i] for i in keep], query_keys=[rows.keys[i] for i in keep],
        product_ids=[rows.pids[i] for i in keep], labels=[rows.labels[i] for i in keep],
        gains=rows.gains[keep].astype(np.float64), scheme=scheme, source=rows.table.path,
        query_field=rows.qcol, id_field=rows.pcol, label_field=rows.lcol,
        unknown_products=unknown, unknown_examples=examples, skipped=rows.skipped, rows=rows.table.rows[keep],
        conflict_examples=rows.conflict_examples,
    )


def _require_relevant(judgments: Judgments, table: Table) -> None:
    if not len(judgments):
        raise SparsefitError("no judgments left to use", file=table.path, hint="check the columns and --on-invalid")
    if not judgments.relevant().any():
        seen = ", ".join(sorted({canonical_label(label) for label in judgments.labels})[:8])
        raise SparsefitError(
            f"no judged query has a relevant product (gain ≥ {format_number(judgments.scheme.relevant_threshold)}); "
            f"labels seen: {seen}; scheme: {judgments.scheme.describe()}",
            file=table.path, column=judgments.label_field, hint="check --scheme, --gain and --relevant-threshold",
        )
