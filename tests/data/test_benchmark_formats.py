"""Public benchmark layouts load directly: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv) and TREC
qrels with their query texts; their problems are the usual one-line errors naming file and line."""

from __future__ import annotations

import json

import pytest

from sparsefit.data import load_catalog, load_judgments
from tests.helpers import error_of, run_cli

CORPUS = [
    {"_id": "d1", "title": "Cordless drill", "text": "A 12V cordless drill with two batteries."},
    {"_id": "d2", "title": "Paint roller", "text": "A 9 in. roller for interior paint."},
    {"_id": "d3", "title": "Copper pipe", "text": "Half inch copper pipe, 10 ft."},
    {"_id": "d4", "title": "Drill bits", "text": "A set of 20 titanium drill bits."},
]
QUERIES = [{"_id": "q1", "text": "cordless drill"}, {"_id": "q2", "text": "paint roller"}]


@pytest.fixture
def beir(tmp_path):
    folder = tmp_path / "mini"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td2\t1\n")
    return folder


def test_a_beir_folder_is_a_catalog_and_its_test_qrels_are_the_judgments(beir):
    catalog = load_catalog(beir)
    assert catalog.ids == ["d1", "d2", "d3", "d4"] and catalog.id_field == "_id"
    assert "Cordless drill" in catalog.texts[0] and "two batteries" in catalog.texts[0]
    judgments = load_judgments(beir, catalog)
    assert sorted(judgments.query_text(k) for k in judgments.keys()) == ["cordless drill", "paint roller"]
    qrels = {judgments.query_text(k): v for k, v in judgments.qrels().items()}
    assert qrels["cordless drill"] == {"d1": 2.0, "d4": 1.0} and qrels["paint roller"] == {"d2": 1.0}


def test_trec_qrels_take_their_query_texts_from_a_tsv_beside_them(beir, tmp_path):
    trec = tmp_path / "trec"
    trec.mkdir()
    (trec / "topics.tsv").write_text("101\tcordless drill\n102\tcopper pipe\n")
    (trec / "judged.qrels").write_text("101 0 d1 3\n101 0 d2 0\n102 0 d3 1\n")
    judgments = load_judgments(trec / "judged.qrels", load_catalog(beir))
    qrels = {judgments.query_text(k): v for k, v in judgments.qrels().items()}
    assert qrels["cordless drill"]["d1"] > qrels["cordless drill"]["d2"] and "d3" in qrels["copper pipe"]


def test_benchmark_problems_are_one_clear_line(beir, tmp_path):
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq9\td2\t1\n")
    err = error_of(load_judgments, beir, load_catalog(beir))
    assert "line 3: query id 'q9' is not in queries.jsonl" in str(err) and str(beir / "qrels" / "test.tsv") in str(err)
    (beir / "qrels" / "test.tsv").unlink()
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    (beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td2\t1\n")
    err = error_of(load_judgments, beir, None)
    assert "no qrels/test.tsv (qrels files: dev.tsv, train.tsv)" in str(err) and "--judgments FOLDER/qrels/dev.tsv" in str(err)
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "j.qrels").write_text("7 0 d1 1\n")
    err = error_of(load_judgments, lone / "j.qrels", None)
    assert "no queries file was found" in str(err) and "queries.tsv" in str(err)


@pytest.mark.slow
def test_one_command_evaluates_a_model_on_a_beir_folder(beir, capsys):
    code, out, err = run_cli(capsys, "evaluate", beir, "--judgments", beir)
    assert code == 0, err
    assert "bm25" in out + err and "splade-tiny" in out + err
