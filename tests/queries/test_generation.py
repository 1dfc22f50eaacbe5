"""Query generation: offline (not titles, deterministic, every product) and through an LLM endpoint."""

from __future__ import annotations

import json
import os

import pytest

from sparsefit.data import load_catalog, load_judgments
from sparsefit.errors import SparsefitError
from sparsefit.queries import LLMQueryGenerator, generate_offline, write_queries
from sparsefit.queries.offline import normalized, words_of
from tests.conftest import EXAMPLES
from tests.helpers import cli_process
from tests.queries.fake_llm import FakeLLM


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(EXAMPLES / "catalog.csv")


def test_offline_queries_are_short_never_titles_and_cover_every_product(catalog):
    queries = generate_offline(catalog, per_product=3, seed=13)
    titles = {pid: normalized(str(t)) for pid, t in zip(catalog.ids, catalog.payload["title"])}
    assert {q.product_id for q in queries} == set(catalog.ids)
    assert len(queries) >= 2.5 * len(catalog)
    for q in queries:
        assert normalized(q.query) not in ("", titles[q.product_id], normalized(catalog.texts[catalog.position(q.product_id)]))
        assert 1 <= len(q.query.split()) <= 6
        assert q.source == "offline"
    per_product = {}
    for q in queries:
        per_product.setdefault(q.product_id, []).append(normalized(q.query))
    assert all(len(v) == len(set(v)) for v in per_product.values())  # distinct per product
    kinds = {q.kind.split("+")[0] for q in queries}
    assert kinds == {"type", "keywords", "attribute", "drop"}  # brand/category columns are used
    typos = [q for q in queries if q.kind.endswith("+typo")]
    assert 0.02 * len(queries) < len(typos) < 0.2 * len(queries)
    # A typo'd query has a word that is not in the product's text.
    assert all(set(words_of(q.query)) - set(words_of(catalog.texts[catalog.position(q.product_id)])) for q in typos)


def test_offline_queries_are_deterministic_by_seed(catalog):
    first = generate_offline(catalog, per_product=2, seed=7)
    assert first == generate_offline(catalog, per_product=2, seed=7)
    assert first != generate_offline(catalog, per_product=2, seed=8)


def test_written_queries_load_back_as_binary_judgments(catalog, tmp_path):
    path = write_queries(generate_offline(catalog, per_product=2), tmp_path / "queries.jsonl")
    judgments = load_judgments(path, catalog)
    assert judgments.scheme.name == "binary" and judgments.gains.min() == 1.0
    assert len(judgments) >= len(catalog)
    assert json.loads(path.read_text().splitlines()[0])["source"] == "offline"


def test_llm_generation_resumes_from_its_cache_and_reports_failed_products(catalog, tmp_path):
    products = list(range(40))
    cache = tmp_path / "cache"
    options = dict(per_product=2, products_per_request=5, concurrency=2, max_retries=1, backoff=0.0, cache_dir=cache)
    # First run: the server breaks down after 3 requests; the rest fails after one retry each.
    with FakeLLM(fail_after=3) as llm:
        generator = LLMQueryGenerator(llm.url, "fake-model", api_key="sk-test", **options)
        queries, report = generator.generate(catalog, product_positions=products)
    assert llm.authorization == {"Bearer sk-test"}
    answered = {q.product_id for q in queries}
    assert len(answered) == 15  # 3 requests × 5 products
    assert sorted(report.failed_products) == sorted(set(catalog.ids[i] for i in products) - answered)
    assert report.errors == {"HTTP 500": report.requests - 3}
    assert report.retries == 5  # one retry for each of the 5 failed requests
    assert all(q.source == "llm:fake-model" and q.kind == "llm" for q in queries)
    # Second run on a healthy server: only the failed products are asked for, the rest come from the cache.
    with FakeLLM() as llm:
        generator = LLMQueryGenerator(llm.url, "fake-model", api_key="sk-test", **options)
        again, report2 = generator.generate(catalog, product_positions=products)
    assert report2.cached == 15 and report2.failed_products == []
    assert len(llm.products_seen) == 25
    assert {q.product_id for q in again} == {catalog.ids[i] for i in products}
    assert [q for q in again if q.product_id in answered] == queries  # cached answers are reused as they were


def test_llm_products_left_out_of_answers_are_retried_then_reported(catalog, tmp_path):
    marker = catalog.texts[3].split()[0]
    with FakeLLM(drop_marker=marker) as llm:
        generator = LLMQueryGenerator(llm.url, "m", per_product=2, products_per_request=10, max_retries=2, backoff=0.0)
        queries, report = generator.generate(catalog, product_positions=range(10))
    missing = [catalog.ids[i] for i in range(10) if marker in catalog.texts[i]]
    assert missing and report.failed_products == missing
    assert {q.product_id for q in queries} == {catalog.ids[i] for i in range(10)} - set(missing)
    assert report.errors.get("product missing from an answer", 0) >= 1


def test_llm_client_errors_are_not_retried_and_are_reported(catalog):
    with FakeLLM(status=401) as llm:
        generator = LLMQueryGenerator(llm.url, "m", products_per_request=5, max_retries=3, backoff=0.0)
        queries, report = generator.generate(catalog, product_positions=range(10))
    assert queries == [] and report.requests == 2 and len(report.failed_products) == 10
    assert list(report.errors) == ["HTTP 401: {\"error\": {\"message\": \"refused\"}}"]


def test_llm_url_must_be_http():
    with pytest.raises(SparsefitError, match="not an http"):
        LLMQueryGenerator("localhost:11434", "m")


@pytest.mark.slow  # the CLI in child processes
def test_generate_queries_cli_with_an_llm_and_a_failing_endpoint(tmp_path):
    out = tmp_path / "q.jsonl"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "", "SPARSEFIT_LLM_API_KEY": "sk-x"}
    with FakeLLM() as llm:
        result = cli_process("generate-queries", EXAMPLES / "catalog.csv", "-o", out, "--llm-url", llm.url, "--llm-model", "fake",
                             "--products", "30", timeout=120, env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
        assert llm.authorization == {"Bearer sk-x"}
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({line["product_id"] for line in lines}) == 30 and lines[0]["source"] == "llm:fake"
    assert "3 requests, 0 retries" in result.stdout + result.stderr
    with FakeLLM(status=500) as llm:  # nothing usable: a clear error, exit 2
        result = cli_process("generate-queries", EXAMPLES / "catalog.csv", "-o", tmp_path / "none.jsonl", "--llm-url", llm.url,
                             "--llm-model", "other", "--products", "3", env={**os.environ, **env, "SPARSEFIT_LLM_MAX_RETRIES": "0"})
    assert result.returncode == 2 and "no usable queries" in result.stderr and "Traceback" not in result.stderr
