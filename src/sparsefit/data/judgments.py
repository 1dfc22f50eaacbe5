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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from sparsefit.data.labels import (
    GAIN_EPS,
    NONFINITE,
    SKIP_HINT,
    LabelProblem,
    LabelScheme,
    build_scheme,
    canonical_label,
    format_number,
)
from sparsefit.data.raw import DEFAULT_MAX_DECOMPRESSED_BYTES
from sparsefit.data.readers import (
    Table,
    detect_column,
    read_table,
    resolve_column,
    show_columns,
)
from sparsefit.errors import SparsefitError

if TYPE_CHECKING:
    from sparsefit.data.catalog import Catalog

QUERY_CANDIDATES = ("query", "search_term", "search_query", "keyword", "keywords", "query_text", "q", "term")
PRODUCT_CANDIDATES = (
    "product_id", "product_uid", "asin", "sku", "item_id", "doc_id", "docid", "pid",
    "productid", "itemid", "document_id",
)  # plain "id" is used only when none of these exists: it is often a judgment row id
LABEL_CANDIDATES = (
    "label", "relevance", "esci_label", "grade", "judgment", "rating", "score", "relevance_label", "gain", "rel",
)
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
    table = read_table(path, encoding=encoding, max_decompressed_bytes=max_decompressed_bytes)
    qcol, pcol, lcol = _columns(table, catalog, query_field, id_field, label_field)
    loader = _Loader(table, qcol, pcol, lcol, on_invalid == "skip")
    loader.drop_blank()
    found_scheme = loader.label_scheme(scheme, gains, relevant_threshold)
    loader.apply_gains(found_scheme)
    unknown, examples = loader.drop_unknown_products(catalog, on_unknown_product) if catalog is not None else (0, [])
    loader.drop_duplicates(on_conflict)
    judgments = loader.result(found_scheme, unknown, examples)
    _require_relevant(judgments, table)
    return judgments


def _columns(
    table: Table, catalog: Catalog | None, query_field: str | None, id_field: str | None, label_field: str | None
) -> tuple[str, str, str]:
    columns = show_columns(table.columns)
    if query_field:
        qcol = resolve_column(table, query_field, what="query", flag="--query-field")
    else:
        qcol = detect_column(table, QUERY_CANDIDATES) or _missing(table, "query", QUERY_CANDIDATES, "--query-field", columns)
    if id_field:
        pcol = resolve_column(table, id_field, what="product id", flag="--judgment-id-field")
    else:
        pcol = _catalog_id_column(table, catalog) or detect_column(table, PRODUCT_CANDIDATES) or detect_column(
            table, ("id",)) or _missing(table, "product id", (*PRODUCT_CANDIDATES, "id"), "--judgment-id-field", columns)
    if label_field:
        lcol = resolve_column(table, label_field, what="label", flag="--label-field")
    else:
        lcol = detect_column(table, LABEL_CANDIDATES) or _missing(table, "label", LABEL_CANDIDATES, "--label-field", columns)
    roles = {"query": qcol, "product id": pcol, "label": lcol}
    if len(set(roles.values())) < 3:
        twice = next(c for c in roles.values() if list(roles.values()).count(c) > 1)
        raise SparsefitError("the same column is used for two roles (query, product id, label)", file=table.path,
                             column=twice, hint="pass --query-field, --judgment-id-field and --label-field explicitly")
    return qcol, pcol, lcol


def _catalog_id_column(table: Table, catalog: Catalog | None) -> str | None:
    if catalog is None:
        return None
    try:
        return resolve_column(table, catalog.id_field, what="product id", flag="--judgment-id-field")
    except SparsefitError:
        return None


def _missing(table: Table, what: str, candidates: tuple[str, ...], flag: str, columns: str) -> str:
    raise SparsefitError(f"no {what} column found (looked for {', '.join(candidates)}); columns are {columns}",
                         file=table.path, hint=f"pass {flag} COLUMN")


class _Loader:
    """The judgment rows being validated; each step narrows ``self.keep`` (indices into the table)."""

    def __init__(self, table: Table, qcol: str, pcol: str, lcol: str, skip: bool) -> None:
        self.table, self.qcol, self.pcol, self.lcol, self.skip = table, qcol, pcol, lcol, skip
        self.raw_queries = table.values(qcol, use="text")
        self.queries = [" ".join(q.split()) for q in self.raw_queries]
        self.pids = table.values(pcol, use="id")
        self.labels = table.values(lcol, use="id")
        self.keys = [q.casefold() for q in self.queries]
        self.keep = list(range(len(table)))
        self.gains = np.zeros(len(table), dtype=np.float64)
        self.conflict_examples: list[str] = []
        self.skipped: dict[str, int] = {}
        self.custom_gains = False

    def row(self, i: int) -> int:
        return int(self.table.rows[i])

    def problem(self, i: int, reason: str, message: str, column: str, hint: str) -> None:
        """Error in error mode; count ``reason`` in skip mode."""
        if not self.skip:
            raise SparsefitError(message, file=self.table.path, row=self.row(i), column=column, hint=hint)
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def drop_blank(self) -> None:
        kept = []
        for i in self.keep:
            if not self.queries[i]:
                self.problem(i, "blank query", "query is blank", self.qcol, f"fill in the query, {SKIP_HINT}")
            elif not self.pids[i]:
                self.problem(i, "blank product id", "product id is blank", self.pcol, f"fill in the id, {SKIP_HINT}")
            elif not self.labels[i]:
                self.problem(i, "blank label", "label is blank (a missing label is never read as 0)", self.lcol,
                             f"fill in the label, {SKIP_HINT}")
            elif canonical_label(self.labels[i]) in NONFINITE:
                self.problem(i, "invalid label", f"label '{self.labels[i]}' is not a finite number", self.lcol,
                             f"fix the label, {SKIP_HINT}")
            else:
                kept.append(i)
        self.keep = kept
        if not kept:
            raise SparsefitError(f"no usable judgments: all {len(self.table)} rows were skipped", file=self.table.path,
                                 hint="check --query-field, --judgment-id-field and --label-field")

    def label_scheme(self, scheme: str | LabelScheme | None, gains: Mapping[str, float] | None,
                     threshold: float | None) -> LabelScheme:
        first: dict[str, int] = {}
        for i in self.keep:
            first.setdefault(self.labels[i], i)
        self.custom_gains = bool(gains) and not isinstance(scheme, LabelScheme)
        try:
            return build_scheme(list(first), scheme, gains, threshold)
        except LabelProblem as problem:
            i = first.get(problem.label)
            raise SparsefitError(problem.message, file=self.table.path, row=None if i is None else self.row(i),
                                 column=self.lcol if i is not None else None, hint=problem.hint) from None

    def apply_gains(self, scheme: LabelScheme) -> None:
        by_label = {label: scheme.gain(label) for label in {self.labels[i] for i in self.keep}}
        kept = []
        for i in self.keep:
            gain = by_label[self.labels[i]]
            if gain is not None and gain >= 0:
                self.gains[i] = gain
                kept.append(i)
            elif gain is not None:
                self.problem(i, "invalid label", f"label '{self.labels[i]}' is below the scheme's range ({scheme.describe()})",
                             self.lcol, f"fix the label, {SKIP_HINT}")
            elif self.custom_gains:
                raise SparsefitError(f"label '{self.labels[i]}' has no gain in --gain", file=self.table.path,
                                     row=self.row(i), column=self.lcol, hint=f"add --gain {self.labels[i]}=NUMBER")
            else:
                self.problem(i, "unknown label", f"label '{self.labels[i]}' is not part of the {scheme.describe()} scheme",
                             self.lcol, f"fix the label or pick another --scheme, {SKIP_HINT}")
        self.keep = kept
        if not kept:
            raise SparsefitError("no judgment has a label of the scheme", file=self.table.path, column=self.lcol,
                                 hint="check --scheme and --gain")

    def drop_unknown_products(self, catalog: Catalog, mode: str) -> tuple[int, list[str]]:
        unknown = [i for i in self.keep if self.pids[i] not in catalog]
        if not unknown:
            return 0, []
        examples = [f"row {self.row(i)}: {self.pcol} '{self.pids[i]}'" for i in unknown[:5]]
        if 2 * len(unknown) > len(self.keep):
            floats = [i for i in unknown if re.fullmatch(r"\d+\.0+", self.pids[i]) and self.pids[i].split(".")[0] in catalog]
            if 2 * len(floats) > len(unknown):
                i = floats[0]
                raise SparsefitError(
                    f"product ids are written as decimal numbers ('{self.pids[i]}' for catalog id "
                    f"'{self.pids[i].split('.')[0]}', {len(floats)} of {len(self.keep)} judgments)",
                    file=self.table.path, row=self.row(i), column=self.pcol,
                    hint="export the id column as text (spreadsheets turn 100001 into 100001.0), then load again",
                )
            raise SparsefitError(
                f"{len(unknown)} of {len(self.keep)} judgments name products not in the catalog "
                f"(e.g. {'; '.join(examples[:3])}); the id column '{self.pcol}' probably does not match "
                f"the catalog's '{catalog.id_field}'", file=self.table.path, column=self.pcol, hint=self._id_hint(catalog),
            )
        if mode == "error":
            i = unknown[0]
            raise SparsefitError(f"product '{self.pids[i]}' is not in the catalog ({len(unknown)} such judgments)",
                                 file=self.table.path, row=self.row(i), column=self.pcol,
                                 hint="add the product to the catalog, or pass --on-unknown-product drop")
        dropped = set(unknown)
        self.keep = [i for i in self.keep if i not in dropped]
        return len(unknown), examples

    def _id_hint(self, catalog: Catalog) -> str:
        best, best_share = None, 0.5
        for column in self.table.columns:
            if column in (self.pcol, self.qcol, self.lcol) or column in self.table.nested:
                continue
            values = self.table.frame[column].str.strip()
            share = float(values.map(lambda v: v in catalog).mean())
            if share > best_share:
                best, best_share = column, share
        if best is not None:
            return f"pass --judgment-id-field {best} ({best_share:.0%} of its values are catalog ids)"
        return "pass --judgment-id-field COLUMN, or check that this is the right catalog"

    def drop_duplicates(self, on_conflict: str) -> None:
        """Keep one judgment per (query, product); conflicting labels are averaged, kept first, or an error."""
        seen: dict[tuple[str, str], int] = {}
        conflicts: dict[int, list[float]] = {}
        kept = []
        for i in self.keep:
            first = seen.setdefault((self.keys[i], self.pids[i]), i)
            if first == i:
                kept.append(i)
            elif abs(self.gains[i] - self.gains[first]) <= GAIN_EPS:
                self.skipped["duplicate judgment"] = self.skipped.get("duplicate judgment", 0) + 1
            elif on_conflict == "error":
                raw, raw_first = self.raw_queries[i].strip(), self.raw_queries[first].strip()
                raise SparsefitError(
                    f"labels query '{self.queries[i]}' / product '{self.pids[i]}' as '{self.labels[i]}', "
                    f"but row {self.row(first)} already gave '{self.labels[first]}'"
                    + ("" if raw == raw_first else f" (there written {raw_first!r}, here {raw!r}; queries are "
                       "matched ignoring case and repeated spaces)"),
                    file=self.table.path, row=self.row(i), column=self.lcol,
                    hint="remove one of the two rows, or pass --on-conflict mean (average) or first",
                )
            else:
                reason = f"conflicting duplicate ({'gains averaged' if on_conflict == 'mean' else 'first kept'})"
                self.skipped[reason] = self.skipped.get(reason, 0) + 1
                if len(self.conflict_examples) < 5:
                    self.conflict_examples.append(f"rows {self.row(first)} and {self.row(i)}: "
                                                  f"'{self.labels[first]}' vs '{self.labels[i]}'")
                conflicts.setdefault(first, [self.gains[first]]).append(self.gains[i])
        if on_conflict == "mean":
            for first, gains in conflicts.items():
                self.gains[first] = float(np.mean(gains))
        self.keep = kept

    def result(self, scheme: LabelScheme, unknown: int, examples: list[str]) -> Judgments:
        keep = self.keep
        return Judgments(
            queries=[self.queries[i] for i in keep], query_keys=[self.keys[i] for i in keep],
            product_ids=[self.pids[i] for i in keep], labels=[self.labels[i] for i in keep],
            gains=self.gains[keep].astype(np.float64), scheme=scheme, source=self.table.path,
            query_field=self.qcol, id_field=self.pcol, label_field=self.lcol,
            unknown_products=unknown, unknown_examples=examples, skipped=self.skipped, rows=self.table.rows[keep],
            conflict_examples=self.conflict_examples,
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
