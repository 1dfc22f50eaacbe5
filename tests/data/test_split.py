"""Query splits: deterministic, by query (never by row), no query in both train and test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sparsefit.data import Judgments, Split, load_judgments, split_queries
from sparsefit.errors import SparsefitError


def judgments_file(tmp_path: Path, rows: list[tuple[str, str, str]], name: str = "j.csv") -> Path:
    path = tmp_path / name
    path.write_text("query,product_id,label\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def many_queries(n: int, *, without_relevant: int = 0) -> list[tuple[str, str, str]]:
    """Two judgments per query; the last ``without_relevant`` queries have no relevant product."""
    rows = []
    for i in range(n):
        rows.append((f"query {i}", f"p{i}", "0" if i >= n - without_relevant else "1"))
        rows.append((f"query {i}", f"p{i + 1000}", "0"))
    return rows


@pytest.fixture
def judgments(tmp_path) -> Judgments:
    return load_judgments(judgments_file(tmp_path, many_queries(50, without_relevant=5)))


def test_split_is_by_query_with_the_right_sizes(judgments):
    split = split_queries(judgments, test_fraction=0.2, seed=13)
    assert len(split.test) == 9  # round(0.2 × 45 queries with a relevant product)
    assert len(split.train) == 41 and split.not_evaluable == 5
    assert not set(split.train) & set(split.test)
    assert set(split.train) | set(split.test) == set(judgments.keys())
    assert split.train == sorted(split.train) and split.test == sorted(split.test)
    assert {f"query {i}" for i in range(45, 50)} <= set(split.train)  # unevaluable queries train only
    assert (split.method, split.seed, split.test_fraction) == ("random", 13, 0.2)


def test_same_seed_same_split_other_seed_other_split(judgments):
    assert split_queries(judgments, seed=13) == split_queries(judgments, seed=13)
    assert split_queries(judgments, seed=13).test != split_queries(judgments, seed=14).test


def test_split_ignores_row_order(tmp_path, judgments):
    rows = many_queries(50, without_relevant=5)
    random.Random(1).shuffle(rows)
    shuffled = load_judgments(judgments_file(tmp_path, rows, name="shuffled.csv"))
    assert shuffled.keys() != judgments.keys()
    assert split_queries(shuffled, seed=7) == split_queries(judgments, seed=7)


def test_at_least_one_test_and_one_train_query(tmp_path):
    two = load_judgments(judgments_file(tmp_path, many_queries(2)))
    assert len(split_queries(two, test_fraction=0.01).test) == 1
    assert len(split_queries(two, test_fraction=0.99).train) == 1
    one = load_judgments(judgments_file(tmp_path, many_queries(3, without_relevant=2), name="one.csv"))
    with pytest.raises(SparsefitError, match="only 1 judged query has a relevant product"):
        split_queries(one)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2])
def test_bad_fraction(judgments, fraction):
    with pytest.raises(SparsefitError, match="must be between 0 and 1"):
        split_queries(judgments, test_fraction=fraction)


def test_separate_test_file_removes_overlap_from_train(tmp_path, judgments):
    test_rows = [("query 1", "p1", "1"), ("new query", "p7", "1"), ("other new", "p8", "0")]
    test = load_judgments(judgments_file(tmp_path, test_rows, name="test.csv"))
    split = split_queries(judgments, test_judgments=test)
    assert split.method == "file"
    assert split.test == ["new query", "query 1"]
    assert "query 1" not in split.train and "other new" not in split.train and len(split.train) == 49
    assert split.overlap_removed == 1 and split.not_evaluable == 1
    # the pipeline merges the two files first; the split must come out the same
    assert split_queries(judgments.merge(test), test_judgments=test) == split


def test_save_and_load_round_trip(tmp_path, judgments):
    split = split_queries(judgments, seed=3)
    path = tmp_path / "run" / "split.json"
    split.save(path)
    assert Split.load(path) == split
    assert json.loads(path.read_text())["test"] == split.test
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temporary file left
    split.save(path)  # overwriting works too
    assert Split.from_json(split.to_json()) == split


def test_loading_a_broken_split(tmp_path):
    with pytest.raises(SparsefitError, match="split file not found"):
        Split.load(tmp_path / "split.json")
    (tmp_path / "split.json").write_text("{not json")
    with pytest.raises(SparsefitError, match="can't read the split"):
        Split.load(tmp_path / "split.json")
    (tmp_path / "split.json").write_text(json.dumps({"train": ["a"], "test": ["a"], "seed": 1,
                                                       "test_fraction": 0.2, "method": "random"}))
    with pytest.raises(SparsefitError, match="in both train and test"):
        Split.load(tmp_path / "split.json")
    (tmp_path / "split.json").write_text(json.dumps({"train": ["a"]}))
    with pytest.raises(SparsefitError, match="not a valid split file"):
        Split.load(tmp_path / "split.json")


def test_check_a_reused_split(tmp_path, judgments):
    split = split_queries(judgments)
    split.check(judgments)
    other = load_judgments(judgments_file(tmp_path, many_queries(40), name="other.csv"))
    with pytest.raises(SparsefitError, match="split.json names queries not in the judgments") as caught:
        split.check(other)
    assert "--split" in caught.value.hint
    more = load_judgments(judgments_file(tmp_path, many_queries(60), name="more.csv"))
    with pytest.raises(SparsefitError, match="10 queries that split.json does not know"):
        split.check(more)
