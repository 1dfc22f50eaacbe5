"""The demo data in examples/: present, reproducible byte-for-byte and internally consistent."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FILES = ("catalog.csv", "judged_queries.csv")


def _rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLES / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, str]]:
    return _rows("catalog.csv")


@pytest.fixture(scope="module")
def judgments() -> list[dict[str, str]]:
    return _rows("judged_queries.csv")


def test_files_exist_and_are_small() -> None:
    for name in (*FILES, "README.md", "make_demo.py"):
        assert (EXAMPLES / name).is_file(), name
    assert sum((EXAMPLES / name).stat().st_size for name in FILES) < 200_000


def test_generator_reproduces_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(EXAMPLES / "make_demo.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


def test_catalog_shape(catalog: list[dict[str, str]]) -> None:
    assert list(catalog[0]) == ["sku", "title", "brand", "category", "description", "price",
                                "in_stock"]
    assert len(catalog) >= 300
    skus = [row["sku"] for row in catalog]
    assert len(set(skus)) == len(skus)
    assert len({row["category"] for row in catalog}) >= 8
    assert len({row["brand"] for row in catalog}) >= 10
    for row in catalog:
        assert row["sku"][:2].isalpha() and row["sku"][2] == "-" and row["sku"][3:].isdigit()
        assert row["title"] and row["description"]
        assert float(row["price"]) > 0
        assert row["in_stock"] in {"true", "false"}


def test_judgments_are_consistent(catalog, judgments) -> None:
    assert list(judgments[0]) == ["query", "sku", "label"]
    skus = {row["sku"] for row in catalog}
    by_query: dict[str, Counter] = defaultdict(Counter)
    pairs = set()
    for row in judgments:
        assert row["sku"] in skus, row
        assert row["label"] in {"E", "S", "C", "I"}, row
        assert (row["query"], row["sku"]) not in pairs, row
        pairs.add((row["query"], row["sku"]))
        by_query[row["query"]][row["label"]] += 1
    assert len(by_query) >= 60
    for query, labels in by_query.items():
        assert labels["E"] >= 1, query
        assert 6 <= sum(labels.values()) <= 15, query
    assert {row["label"] for row in judgments} == {"E", "S", "C", "I"}
