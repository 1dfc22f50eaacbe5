"""Validation of judgment rows: blank fields, labels outside the scheme, products missing from the catalog,
and (query, product) pairs judged twice.

Why one object: each step narrows the same list of kept rows and reports problems with their source
row, so ``on_invalid="skip"`` can count what it left out instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from sparsefit.data.labels import (
    GAIN_EPS,
    NONFINITE,
    SKIP_HINT,
    LabelProblem,
    LabelScheme,
    build_scheme,
    canonical_label,
)
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

if TYPE_CHECKING:
    from sparsefit.data.catalog import Catalog


class JudgmentRows:
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
