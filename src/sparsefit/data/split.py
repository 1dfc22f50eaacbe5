"""Train/test split of queries (never of rows), deterministic from a seed, saved as ``split.json``.

Only queries with at least one relevant judgment can be test queries (nDCG needs one); the others
go to train. With a separate test file, its queries are the test set and are removed from train.

Example:
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from sparsefit.data.judgments import Judgments
    >>> from sparsefit.data.labels import LabelScheme
    >>> keys = [f"q{i}" for i in range(10)]
    >>> j = Judgments(keys, keys, ["p"] * 10, ["1"] * 10, np.ones(10), LabelScheme("binary", {"1": 1.0, "0": 0.0}, 1.0),
    ...               Path("j.csv"), "query", "product_id", "label")
    >>> s = split_queries(j, test_fraction=0.2, seed=13)
    >>> len(s.train), len(s.test), set(s.train) & set(s.test)
    (8, 2, set())
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sparsefit.data.judgments import Judgments
from sparsefit.errors import SparsefitError
from sparsefit.files import write_atomic

SPLIT_VERSION = 1
STALE_HINT = "delete it or pass --split"


@dataclass
class Split:
    """Query keys for training and for held-out evaluation (each list sorted, no key in both)."""

    train: list[str]
    test: list[str]
    seed: int
    test_fraction: float
    method: str  # "random" | "file"
    not_evaluable: int = 0  # queries without a relevant judgment (kept in train, or dropped from a test file)
    overlap_removed: int = 0  # test-file queries also found in the training judgments, removed from train

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (see :meth:`from_json`)."""
        return {
            "version": SPLIT_VERSION, "method": self.method, "seed": self.seed, "test_fraction": self.test_fraction,
            "not_evaluable": self.not_evaluable, "overlap_removed": self.overlap_removed,
            "train": self.train, "test": self.test,
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str | Path | None = None) -> Split:
        """Rebuild a split from :meth:`to_json` output; a malformed one is a :class:`SparsefitError`."""
        try:
            train, test = data["train"], data["test"]
            if not all(isinstance(k, str) for k in [*train, *test]):
                raise TypeError("query keys must be strings")
            split = cls(
                train=sorted(train), test=sorted(test), seed=int(data["seed"]),
                test_fraction=float(data["test_fraction"]), method=str(data["method"]),
                not_evaluable=int(data.get("not_evaluable", 0)), overlap_removed=int(data.get("overlap_removed", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SparsefitError(f"not a valid split file ({type(exc).__name__}: {exc})", file=source,
                                 hint=STALE_HINT) from None
        both = set(split.train) & set(split.test)
        if both:
            raise SparsefitError(f"{len(both)} queries are in both train and test (e.g. '{sorted(both)[0]}')",
                                 file=source, hint=STALE_HINT)
        return split

    def save(self, path: str | Path) -> None:
        """Write atomically (a temporary file, then a rename), so a crash never leaves half a file."""
        write_atomic(Path(path), json.dumps(self.to_json(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split saved by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SparsefitError("split file not found", file=path, hint="check the path given to --split") from None
        except IsADirectoryError:
            raise SparsefitError("is a folder, not a split file", file=path, hint="pass the split.json inside it") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SparsefitError(f"can't read the split ({exc})", file=path, hint=STALE_HINT) from None
        return cls.from_json(data, source=path)

    def check(self, judgments: Judgments, *, source: str | Path | None = None) -> None:
        """Error unless this split still fits ``judgments`` (with any test-file judgments merged in).

        Every split key must be a judged query, and every judged query with a relevant product must be in the split.
        """
        judged = set(judgments.query_keys)
        named = [*self.train, *self.test]
        gone = [k for k in named if k not in judged]
        if gone:
            raise SparsefitError(
                f"split.json names queries not in the judgments ({len(gone)} of {len(named)}, e.g. '{gone[0]}')",
                file=source, hint=STALE_HINT,
            )
        known = set(named)
        new = sorted(judgments.keys_with_relevant() - known)
        if new:
            raise SparsefitError(
                f"the judgments have {len(new)} queries that split.json does not know (e.g. '{new[0]}')",
                file=source, hint=STALE_HINT,
            )


def split_queries(
    judgments: Judgments,
    *,
    test_fraction: float = 0.2,
    seed: int = 13,
    test_judgments: Judgments | None = None,
) -> Split:
    """Split the queries of ``judgments`` into train and test.

    The result depends only on the set of query keys and the seed, not on row order. With
    ``test_judgments`` the test set is that file's queries (those with a relevant judgment).
    """
    if test_judgments is not None:
        return _file_split(judgments, test_judgments, seed)
    if not 0 < test_fraction < 1:
        raise SparsefitError(f"test fraction {test_fraction} must be between 0 and 1",
                             hint="pass e.g. --test-fraction 0.2")
    keys = sorted(set(judgments.query_keys))
    eligible = sorted(judgments.keys_with_relevant())
    if len(eligible) < 2:
        raise SparsefitError(
            f"only {len(eligible)} judged {'query has' if len(eligible) == 1 else 'queries have'} a relevant product; "
            "a split needs at least 2 (one to train on, one held out)",
            file=judgments.source, hint="add judged queries, or pass --test-judgments with a separate test file",
        )
    n_test = min(max(int(round(test_fraction * len(eligible))), 1), len(eligible) - 1)
    order = np.random.default_rng(seed).permutation(len(eligible))
    test = sorted(eligible[i] for i in order[:n_test])
    chosen = set(test)
    train = [k for k in keys if k not in chosen]
    return Split(train=train, test=test, seed=seed, test_fraction=test_fraction, method="random",
                 not_evaluable=len(keys) - len(eligible))


def _file_split(judgments: Judgments, test_judgments: Judgments, seed: int) -> Split:
    test_keys = set(test_judgments.query_keys)
    test = sorted(test_judgments.keys_with_relevant())
    if not test:
        raise SparsefitError("no query in the test judgments has a relevant product", file=test_judgments.source,
                             hint="check the test file's labels and --scheme")
    test_pairs = set(zip(test_judgments.query_keys, test_judgments.product_ids))
    overlap = {k for k, p in zip(judgments.query_keys, judgments.product_ids) if k in test_keys and (k, p) not in test_pairs}
    train = sorted(set(judgments.query_keys) - test_keys)
    if not train:
        raise SparsefitError("every training query is also in the test judgments, so nothing is left to train on",
                             file=judgments.source, hint="use training judgments with other queries than the test file")
    return Split(train=train, test=test, seed=seed, test_fraction=round(len(test) / (len(test) + len(train)), 6),
                 method="file", not_evaluable=len(test_keys) - len(test), overlap_removed=len(overlap))


def validation_keys(train: Judgments, count: int, seed: int) -> list[str]:
    """``count`` (at most all) of the training queries with a relevant judgment, drawn with ``seed``, sorted:
    the queries fusion weights and feedback coefficients are fitted on, never a test query.

    Example:
        >>> import numpy as np
        >>> from sparsefit.data.judgments import Judgments
        >>> from sparsefit.data.labels import LabelScheme
        >>> keys = [f"q{i}" for i in range(10)]
        >>> j = Judgments(keys, keys, ["p"] * 10, ["1"] * 10, np.ones(10), LabelScheme("binary", {"1": 1.0, "0": 0.0}, 1.0),
        ...               Path("j.csv"), "query", "product_id", "label")
        >>> validation_keys(j, 3, seed=13) == validation_keys(j, 3, seed=13), len(validation_keys(j, 30, seed=1))
        (True, 10)
    """
    evaluable = sorted(train.keys_with_relevant())
    count = max(0, min(count, len(evaluable)))
    picked = np.random.default_rng(seed).choice(len(evaluable), size=count, replace=False)
    return sorted(evaluable[i] for i in picked)
