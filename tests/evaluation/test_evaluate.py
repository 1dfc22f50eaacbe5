from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sparsefit.config import load_settings
from sparsefit.data import load_catalog, load_judgments, split_queries
from sparsefit.evaluation.evaluate import evaluate, index_name
from sparsefit.index import IndexLocation
from sparsefit.pipeline import run_evaluation
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def demo():
    catalog = load_catalog(EXAMPLES / "catalog.csv")
    judgments = load_judgments(EXAMPLES / "judged_queries.csv", catalog)
    return catalog, judgments, split_queries(judgments, seed=13)


def test_every_system_is_scored_on_exactly_the_test_queries(demo, splade_tiny, tmp_path):
    catalog, judgments, split = demo
    report = evaluate(catalog, judgments, split, models=[splade_tiny], location=IndexLocation(path=tmp_path), show_progress=False)
    assert [s.name for s in report.systems] == ["bm25", "splade-tiny"]
    for system in report.systems:
        assert sorted(system.per_query) == sorted(split.test)
        assert set(system.run) == set(split.test)
    assert not set(split.test) & set(split.train)
    comparison = report.comparisons()["splade-tiny"]
    assert comparison["n_queries"] == len(split.test) and 0 <= comparison["p_value"] <= 1


def test_search_through_the_index_equals_exact_dot_products(demo, splade_tiny, tmp_path):
    catalog, judgments, split = demo
    report = evaluate(catalog, judgments, split, models=[splade_tiny], bm25=False, location=IndexLocation(path=tmp_path),
                      retrieve_k=10, show_progress=False)
    run = report.system("splade-tiny").run
    documents = splade_tiny.encode_documents(catalog.texts)
    keys = sorted(split.test)
    queries = splade_tiny.encode_queries([judgments.query_text(k) for k in keys])
    scores = (queries @ documents.T).toarray()
    for row, key in enumerate(keys):
        expected = [catalog.ids[i] for i in np.argsort(-scores[row], kind="stable")[:10] if scores[row, i] > 0]
        got = [doc for doc, _ in run[key]]
        assert got[:5] == expected[:5]
        np.testing.assert_allclose([s for _, s in run[key]], np.sort(scores[row])[::-1][: len(got)], rtol=1e-4)


def test_report_files(demo, splade_tiny, tmp_path):
    catalog, judgments, split = demo
    report = evaluate(catalog, judgments, split, models=[splade_tiny], location=IndexLocation(path=tmp_path), show_progress=False)
    report.save(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    assert summary["systems"][0]["ndcg@10_vs_baseline"] == 1.0
    assert summary["systems"][1]["metrics"] == pytest.approx(report.mean("splade-tiny"))
    rows = list(csv.DictReader((tmp_path / "out" / "per_query.csv").open()))
    assert len(rows) == 2 * len(split.test)
    mean = np.mean([float(r["ndcg@10"]) for r in rows if r["system"] == "bm25"])
    assert mean == pytest.approx(report.mean("bm25")["ndcg@10"], abs=1e-5)
    lines = (tmp_path / "out" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(split.test)


def test_separate_test_file_defines_the_test_queries(tmp_path):
    lines = (EXAMPLES / "judged_queries.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    queries = sorted({line.split(",")[0] for line in body})
    held = set(queries[:20])
    (tmp_path / "train.csv").write_text("\n".join([header] + [l for l in body if l.split(",")[0] not in held]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([header] + [l for l in body if l.split(",")[0] in held]) + "\n")
    settings = load_settings(test_judgments=tmp_path / "test.csv", models=[], output=tmp_path / "out")
    report, folder, inputs = run_evaluation(EXAMPLES / "catalog.csv", tmp_path / "train.csv", settings, show_progress=False)
    assert inputs.split.method == "file"
    assert sorted(report.queries.values()) == sorted(held)
    assert not set(inputs.split.train) & set(inputs.split.test)


def test_index_names_are_safe():
    assert index_name("runs/x/rounds/2/model") == "runs-x-rounds-2-model"
    assert index_name("splade-tiny") == "splade-tiny"


def test_a_complete_index_is_reopened_and_an_incomplete_or_damaged_one_rebuilt(demo, splade_tiny, tmp_path):
    from sparsefit.indexing import catalog_index

    catalog, _, _ = demo
    encoder = splade_tiny
    vectors_file = tmp_path / "vectors.npz"
    options = dict(show_progress=False, vectors_file=vectors_file)

    def open_again():
        seconds = {}
        index, vectors = catalog_index(encoder, catalog, IndexLocation(path=tmp_path / "index"), seconds=seconds, **options)
        index.close()
        return seconds["encode"], vectors

    built, first = open_again()
    assert built > 0 and first.shape[0] == len(catalog)
    reopened, again = open_again()
    assert reopened == 0.0 and (again != first).nnz == 0  # complete: reopened, not rebuilt
    vectors_file.write_bytes(b"damaged")
    rebuilt, repaired = open_again()
    assert rebuilt > 0 and (repaired != first).nnz == 0  # damaged vectors: rebuilt
    from sparsefit.index import open_index

    with open_index(path=tmp_path / "index") as index:
        meta = index.get_metadata()
        index.set_metadata({**meta, "complete": False})  # as if killed while indexing
    rebuilt, _ = open_again()
    assert rebuilt > 0


def test_the_search_mode_is_part_of_the_index(demo, splade_tiny, tmp_path):
    from sparsefit.indexing import catalog_index
    from sparsefit.index import TwoStage

    catalog, _, _ = demo
    tight = TwoStage(posting_cap=3, query_terms=2, candidates=5)

    def index_with(two_stage):
        seconds = {}
        index, _ = catalog_index(splade_tiny, catalog, IndexLocation(path=tmp_path / "index", two_stage=two_stage),
                                 show_progress=False, seconds=seconds)
        return index, seconds["encode"]

    index, built = index_with(tight)
    with index:
        assert built > 0 and index.two_stage == tight and index.two_stage.thresholds
        query = splade_tiny.encode_queries(["cordless drill"])
        approx = [h.product_id for h in index.search(query, limit=10)]
        exact = [h.product_id for h in index.search(query, limit=10, exact=True)]
        assert approx != exact  # 3 postings per common term: the candidate stage decides
    index, reopened = index_with(tight)
    with index:
        assert reopened == 0.0  # same model, catalog and search mode: reopened
    index, rebuilt = index_with(None)
    with index:
        assert rebuilt > 0 and index.two_stage is None
        assert [h.product_id for h in index.search(query, limit=10)] == exact


def test_evaluate_measures_the_two_stage_search_it_is_given(demo, splade_tiny, tmp_path):
    from sparsefit.index import TwoStage, open_index

    catalog, judgments, split = demo
    options = dict(models=[splade_tiny], bm25=False, retrieve_k=10, show_progress=False)
    exact = evaluate(catalog, judgments, split, location=IndexLocation(path=tmp_path / "exact"), **options).system("splade-tiny").run
    tight = TwoStage(posting_cap=3, query_terms=2, candidates=5)
    approx = evaluate(catalog, judgments, split, location=IndexLocation(path=tmp_path / "two", two_stage=tight), **options).system("splade-tiny").run
    with open_index(path=tmp_path / "two" / index_name(splade_tiny.name)) as index:
        assert index.two_stage == tight
    assert set(approx) == set(exact) == set(split.test)
    assert any(approx[k] != exact[k] for k in exact)  # the cut decides some rankings


def test_an_edited_payload_rebuilds_the_index_and_serves_the_new_value(demo, splade_tiny, tmp_path):
    """The index stores the payload that serving filters on: a changed price must not reuse a stale index."""
    import dataclasses

    from sparsefit.indexing import catalog_index

    catalog, _, _ = demo
    location = IndexLocation(path=tmp_path / "index")
    seconds: dict[str, float] = {}
    index, _ = catalog_index(splade_tiny, catalog, location, seconds=seconds, show_progress=False)
    index.close()
    assert seconds["encode"] > 0
    payload = catalog.payload.copy()
    payload.loc[0, "price"] = 12345.0  # only the payload changes: same ids, same texts
    edited = dataclasses.replace(catalog, payload=payload)
    assert edited.fingerprint() == catalog.fingerprint()
    seconds = {}
    index, _ = catalog_index(splade_tiny, edited, location, seconds=seconds, show_progress=False)
    with index:
        assert seconds["encode"] > 0  # rebuilt
        assert index.retrieve([catalog.ids[0]])[0]["price"] == 12345.0
    seconds = {}
    index, _ = catalog_index(splade_tiny, edited, location, seconds=seconds, show_progress=False)
    index.close()
    assert seconds["encode"] == 0.0  # unchanged again: reopened


def test_fine_tuned_folders_are_rows_named_by_their_paths(demo, splade_tiny, tmp_path):
    """A saved model keeps its base model's name; two of them beside the base model must still be three rows."""
    from sparsefit.errors import SparsefitError

    catalog, judgments, split = demo
    first, second = splade_tiny.save(tmp_path / "a" / "model"), splade_tiny.save(tmp_path / "b" / "model")
    report = evaluate(catalog, judgments, split, models=["splade-tiny", str(first), str(second)],
                      location=IndexLocation(path=tmp_path / "indexes"), show_progress=False, bm25=False)
    assert [s.name for s in report.systems] == ["splade-tiny", str(first), str(second)]
    with pytest.raises(SparsefitError, match="two models to evaluate are named"):
        evaluate(catalog, judgments, split, models=[str(first), str(first)], location=IndexLocation(path=tmp_path / "i2"),
                 show_progress=False, bm25=False)
