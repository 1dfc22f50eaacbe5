"""Filters from user input (the API's "filter" field): what the engine cannot take is a SparsefitError
(a 400), never another exception (a 500). Found by the API fuzz test (tests/serving/test_fuzz.py)."""

from __future__ import annotations

import pytest
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.index import open_index, parse_filter

QUERY = sp.csr_matrix([[1.0, 0.0]])
PAYLOADS = [{"brand": "Acme", "stars": 2**63 - 1, "in stock": True}, {"brand": "Bolt", "stars": -(2**63)}]


@pytest.fixture(params=["edge", "client-local"])
def index(request, tmp_path):
    idx = open_index(path=tmp_path / "edge") if request.param == "edge" else open_index(local_client=True)
    idx.upsert(["1", "SKU-2"], sp.csr_matrix([[1.0, 0.0], [0.5, 1.0]]), PAYLOADS)
    yield idx
    idx.close()


@pytest.mark.parametrize("d, fragment", [
    ({"price": {"lt": 10**400}}, "finite number"),  # too large for a float: was OverflowError
    ({"price": {"gte": -(2**1100)}}, "finite number"),
    ({"brand": 2**63}, "64-bit"),  # outside Qdrant's integers: was TypeError on Edge
    ({"brand": -(2**63) - 1}, "64-bit"),
    ({"brand": [2**64, 1]}, "64-bit"),
    ({"brand": {"not": 2**64}}, "64-bit"),
])
def test_numbers_out_of_range_are_refused_when_parsed(d, fragment) -> None:
    with pytest.raises(SparsefitError, match=fragment):
        parse_filter(d)


@pytest.mark.parametrize("key", ["a b", "[", "a..b", '"', "a:b", "a/b", "\U0001F600", "a[x]", "a\nb"])
def test_keys_the_engine_cannot_read_are_a_sparsefit_error(index, key) -> None:
    f = parse_filter({key: "x"})
    with pytest.raises(SparsefitError):  # Edge raised ValueError("invalid JSON path ...")
        index.search(QUERY, filter=f)
    with pytest.raises(SparsefitError):
        index.search_batch(QUERY, filters=f)


def test_valid_edge_cases_still_search(index) -> None:
    assert [h.product_id for h in index.search(QUERY, filter=parse_filter({"stars": 2**63 - 1}))] == ["1"]
    assert [h.product_id for h in index.search(QUERY, filter=parse_filter({"stars": -(2**63)}))] == ["SKU-2"]
    assert [h.product_id for h in index.search(QUERY, filter=parse_filter({'"in stock"': True}))] == ["1"]
    assert index.search(QUERY, filter=parse_filter({"price": {"lt": 2**70}})) == []  # no price: nothing matches
