"""Exclusion rules with the real SPLADE-tiny model on an ambiguous catalog: "mouse" the device vs the rodent."""

from __future__ import annotations

import pytest

from sparsefit.config import load_settings
from sparsefit.errors import SparsefitError
from sparsefit.index import open_index
from sparsefit.serving.rules import ExclusionRule
from sparsefit.serving.service import SearchService

PRODUCTS = {
    "M1": "Wireless Optical Computer Mouse, 2.4 GHz USB Receiver",
    "M2": "Ergonomic Bluetooth Mouse for Laptop and PC",
    "M3": "Gaming Mouse with RGB Lighting and 6 Buttons",
    "M4": "Keyboard and Mouse Combo, Wireless",
    "T1": "Snap Mouse Trap, Reusable, 4-Pack",
    "T2": "Humane Catch and Release Mouse Trap",
    "T3": "Electronic Mouse and Rat Trap, Battery Powered",
    "X1": "Mouse Pad with Wrist Rest",
    "X2": "USB-C Hub with 4 Ports",
    "X3": "Cordless Drill Driver Kit",
}
TRAPS = {"T1", "T2", "T3"}


@pytest.fixture
def service(splade_tiny, tmp_path):
    index = open_index(path=tmp_path / "index")
    index.upsert(list(PRODUCTS), splade_tiny.encode_documents(list(PRODUCTS.values())),
                 [{"title": t} for t in PRODUCTS.values()])
    service = SearchService(tmp_path, load_settings(), splade_tiny, index)
    yield service
    service.close()


def _ids(result) -> list[str]:
    return [h["product_id"] for h in result["hits"]]


def test_a_rule_removes_the_wrong_sense_of_an_ambiguous_query(service):
    before = _ids(service.search("wireless mouse", limit=10))
    assert TRAPS <= set(before)  # without the rule the rodent traps show up for a computer mouse
    rule = service.add_rule("computer mouse", "mouse trap for rodents")
    result = service.search("wireless mouse", limit=10)
    after = _ids(result)
    assert not TRAPS & set(after)
    assert [p for p in before if p not in TRAPS] == after  # everything else keeps its order
    assert result["rules_fired"] == [{"id": rule.id, "when": "computer mouse", "exclude": "mouse trap for rodents",
                                      "similarity": pytest.approx(result["rules_fired"][0]["similarity"]),
                                      "excluded_products": 3}]
    # The other sense is left alone: a query for traps is nearer B than A, so the rule does not fire.
    traps = service.search("mouse trap", limit=3)
    assert set(_ids(traps)) == TRAPS and traps["rules_fired"] == []
    # A query near neither anchor is untouched.
    assert service.search("cordless drill", limit=3)["rules_fired"] == []
    # Rules can be switched off per request.
    assert TRAPS <= set(_ids(service.search("wireless mouse", limit=10, rules=False)))


def test_rules_are_stored_with_the_collection(service, splade_tiny, tmp_path):
    rule = service.add_rule("computer mouse", "mouse trap for rodents")
    service.close()
    index = open_index(path=tmp_path / "index", create=False)
    reopened = SearchService(tmp_path, load_settings(), splade_tiny, index)
    try:
        assert [r.id for r in reopened.rules.list()] == [rule.id]
        assert not TRAPS & set(_ids(reopened.search("mouse for laptop", limit=10)))
        reopened.remove_rule(rule.id)
        assert reopened.rules.list() == [] and index.get_metadata().get("exclusion_rules") == []
    finally:
        reopened.close()
    service.index = open_index(path=tmp_path / "index", create=False)  # for the fixture's close


def test_many_rules_cost_one_extra_search(service, monkeypatch):
    for i in range(30):
        service.add_rule(f"computer mouse model {i}", f"mouse trap for rodents size {i}")
    calls = []
    original = service.index.search_batch
    monkeypatch.setattr(service.index, "search_batch", lambda *a, **k: calls.append(a[0].shape[0]) or original(*a, **k))
    result = service.search("wireless computer mouse", limit=10)
    assert len(calls) == 2  # one batched search for all fired rules, then the main search
    assert calls[0] == len(result["rules_fired"]) > 1
    assert not TRAPS & set(_ids(result))


@pytest.mark.parametrize("when, exclude, options, fragment", [
    ("", "mouse trap", {}, "two non-empty"),
    ("mouse", "Mouse", {}, "are the same"),
    ("a", "b", {"when_threshold": 0}, "when_threshold"),
    ("a", "b", {"exclude_ratio": 1.5}, "exclude_ratio"),
    ("a", "b", {"exclude_limit": 0}, "exclude_limit"),
])
def test_bad_rules_are_refused_with_a_reason(when, exclude, options, fragment):
    with pytest.raises(SparsefitError, match=fragment):
        ExclusionRule.new(when, exclude, **options)


def test_explain_with_the_real_model_marks_query_words_and_expansions(service, splade_tiny_inference_free):
    service._catalog = type("C", (), {"texts": list(PRODUCTS.values()), "__contains__": lambda s, p: p in PRODUCTS,
                                      "position": lambda s, p: list(PRODUCTS).index(p)})()
    # The base model is another real model than the served one (the inference-free SPLADE-tiny: its query side
    # is the query's own tokens at weight 1, no expansion), so each side shows which model encoded it.
    base_encoder = splade_tiny_inference_free
    service._base = base_encoder
    body = service.explain("wireless mouse", "M1", top_k=200)  # every shared term listed
    tuned, base = body["models"]["tuned"], body["models"]["base"]
    in_text = {t["term"] for t in tuned["query"]["terms"] if t["in_text"]}
    assert {"wireless", "mouse"} <= in_text
    assert tuned["query"]["expansion"] and all(t["term"] not in ("wireless", "mouse") for t in tuned["query"]["expansion"])
    assert {"mouse", "wireless"} <= {t["term"] for t in tuned["shared_terms"][:5]}
    assert sum(t["share"] for t in tuned["shared_terms"]) <= 1.0 + 1e-6
    # Each side's score is its own model's dot product, computed here without explain.
    for side, encoder in ((tuned, service.encoder), (base, base_encoder)):
        q, d = encoder.encode_queries(["wireless mouse"]), encoder.encode_documents([PRODUCTS["M1"]])
        assert side["score"] == pytest.approx(float(q.multiply(d).sum()), abs=1e-3)
        assert sum(t["contribution"] for t in side["shared_terms"]) == pytest.approx(side["score"], abs=1e-3)
    assert abs(tuned["score"] - base["score"]) > 0.1
    assert sorted((t["term"], t["weight"]) for t in base["query"]["terms"]) == [("mouse", 1.0), ("wireless", 1.0)]
    assert base["query"]["expansion"] == []
