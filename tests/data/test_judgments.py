"""Judgments: column detection, label schemes, and every way a judgment file can be wrong."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from sparsefit.data import Catalog, LabelScheme, detect_scheme, load_catalog, load_judgments
from sparsefit.errors import SparsefitError
from tests.helpers import error_of

CATALOG_CSV = "product_id,title\n" + "".join(f"p{i},Product {i}\n" for i in range(1, 11))


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def judgments_csv(tmp_path: Path, rows: list[tuple[str, str, str]], header: str = "query,product_id,label",
                  name: str = "j.csv") -> Path:
    return write(tmp_path, name, header + "\n" + "".join(",".join(row) + "\n" for row in rows))


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    return load_catalog(write(tmp_path, "products.csv", CATALOG_CSV))


# -- label schemes --------------------------------------------------------------------------------

def test_esci_letters(tmp_path):
    rows = [("mug", "p1", "E"), ("mug", "p2", "S"), ("mug", "p3", "C"), ("mug", "p4", "I")]
    j = load_judgments(judgments_csv(tmp_path, rows, header="query,product_id,esci_label"))
    assert j.label_field == "esci_label" and j.scheme.name == "esci"
    assert j.gains.tolist() == [1.0, 0.1, 0.01, 0.0]
    assert j.relevant().tolist() == [True, False, False, False]


def test_esci_words_any_case(tmp_path):
    rows = [("mug", "p1", "Exact"), ("mug", "p2", " substitute "), ("mug", "p3", "COMPLEMENT"), ("mug", "p4", "irrelevant")]
    j = load_judgments(judgments_csv(tmp_path, rows))
    assert j.scheme.name == "esci" and j.gains.tolist() == [1.0, 0.1, 0.01, 0.0]
    assert j.labels[1] == "substitute"


def test_wands(tmp_path):
    rows = [("mug", "p1", "Exact"), ("mug", "p2", "Partial"), ("mug", "p3", "Irrelevant")]
    j = load_judgments(judgments_csv(tmp_path, rows))
    assert j.scheme.name == "wands" and j.gains.tolist() == [2.0, 1.0, 0.0]
    assert j.scheme.relevant_threshold == 2.0 and j.relevant().tolist() == [True, False, False]


def test_graded_one_to_three_gives_gains_zero_to_two(tmp_path):
    rows = [("deck", "p1", "3"), ("deck", "p2", "2.33"), ("deck", "p3", "1"), ("deck", "p4", "2"), ("deck", "p5", "1.67")]
    j = load_judgments(judgments_csv(tmp_path, rows, header="search_term,product_uid,relevance"))
    assert j.scheme.name == "graded" and (j.scheme.low, j.scheme.high) == (1.0, 3.0)
    assert j.gains.tolist() == pytest.approx([2.0, 1.33, 0.0, 1.0, 0.67])
    assert j.scheme.relevant_threshold == 1.0
    assert j.relevant().tolist() == [True, True, False, True, False]
    assert j.scheme.describe() == "graded 1.0–3.0 (gain = label − 1.0, relevant ≥ 1.0 gain)"


@pytest.mark.parametrize("labels", [("1", "0"), ("true", "false"), ("Yes", "no"), ("relevant", "irrelevant"), ("1.0", "0")])
def test_binary(tmp_path, labels):
    rows = [("mug", "p1", labels[0]), ("mug", "p2", labels[1])]
    j = load_judgments(judgments_csv(tmp_path, rows))
    assert j.scheme.name == "binary" and j.gains.tolist() == [1.0, 0.0]


def test_detect_scheme_directly():
    assert detect_scheme(["E", "exact", "I", ""]).name == "esci"
    assert detect_scheme(["0", "1", "2", "3"]).relevant_threshold == 1.5
    assert detect_scheme(["2", "0", "4"]).gain("4") == 4.0
    with pytest.raises(SparsefitError, match="'Good' is not a known label"):
        detect_scheme(["Good", "Bad"])


def test_forced_scheme(tmp_path):
    path = judgments_csv(tmp_path, [("mug", "p1", "1"), ("mug", "p2", "0")])
    j = load_judgments(path, scheme="graded")
    assert j.scheme.name == "graded" and j.gains.tolist() == [1.0, 0.0] and j.scheme.relevant_threshold == 0.5
    assert "unknown label scheme 'trec'" in str(error_of(load_judgments, path, scheme="trec"))


def test_forced_scheme_rejects_a_label_outside_it(tmp_path):
    path = judgments_csv(tmp_path, [("mug", "p1", "E"), ("mug", "p2", "Partial"), ("cup", "p3", "S")])
    err = error_of(load_judgments, path, scheme="esci")
    assert (err.row, err.column) == (3, "label") and "'Partial'" in str(err)
    j = load_judgments(path, scheme="esci", on_invalid="skip")
    assert j.product_ids == ["p1", "p3"] and j.skipped == {"unknown label": 1}


def test_custom_gains(tmp_path):
    rows = [("mug", "p1", "E"), ("mug", "p2", "S"), ("mug", "p3", "C"), ("mug", "p4", "I")]
    path = judgments_csv(tmp_path, rows)
    j = load_judgments(path, gains={"E": 3, "S": 2, "c": 1, "I": 0})
    assert j.gains.tolist() == [3.0, 2.0, 1.0, 0.0] and j.scheme.relevant_threshold == 3.0
    j = load_judgments(path, gains={"exact": 3, "substitute": 2, "complement": 1, "irrelevant": 0}, relevant_threshold=2)
    assert j.relevant().tolist() == [True, True, False, False]
    err = error_of(load_judgments, path, gains={"E": 1, "S": 0.1, "I": 0})
    assert err.row == 4 and "label 'C' has no gain" in str(err)


def test_custom_gains_for_an_unknown_vocabulary(tmp_path):
    path = judgments_csv(tmp_path, [("mug", "p1", "perfect"), ("mug", "p2", "good"), ("mug", "p3", "bad")])
    err = error_of(load_judgments, path)
    assert err.row == 2 and "'perfect' is not a known label" in str(err) and "--gain" in err.hint
    j = load_judgments(path, gains={"perfect": 2, "good": 1, "bad": 0})
    assert j.scheme.name == "custom" and j.gains.tolist() == [2.0, 1.0, 0.0]


def test_relevant_threshold_override(tmp_path):
    rows = [("deck", "p1", "3"), ("deck", "p2", "2"), ("deck", "p3", "1")]
    j = load_judgments(judgments_csv(tmp_path, rows), relevant_threshold=2.0)
    assert j.relevant().tolist() == [True, False, False]


# -- bad labels -----------------------------------------------------------------------------------

def test_blank_label_in_a_numeric_column_is_an_error_not_zero(tmp_path):
    path = judgments_csv(tmp_path, [("deck", "p1", "3"), ("deck", "p2", ""), ("deck", "p3", "1")])
    err = error_of(load_judgments, path)
    assert (err.row, err.column) == (3, "label") and "label is blank" in str(err)
    j = load_judgments(path, on_invalid="skip")
    assert j.product_ids == ["p1", "p3"] and j.gains.tolist() == [2.0, 0.0]
    assert j.skipped == {"blank label": 1}


def test_blank_query_and_blank_product_id(tmp_path):
    err = error_of(load_judgments, judgments_csv(tmp_path, [("deck", "p1", "1"), ("  ", "p2", "0")]))
    assert (err.row, err.column) == (3, "query") and "query is blank" in str(err)
    path = judgments_csv(tmp_path, [("deck", "p1", "1"), ("deck", "", "0"), ("", "p3", "1")])
    err = error_of(load_judgments, path)
    assert (err.row, err.column) == (3, "product_id")
    assert load_judgments(path, on_invalid="skip").skipped == {"blank product id": 1, "blank query": 1}


def test_mixed_label_types(tmp_path):
    rows = [("deck", "p1", "3"), ("deck", "p2", "2"), ("deck", "p3", "Exact"), ("deck", "p4", "1")]
    err = error_of(load_judgments, judgments_csv(tmp_path, rows))
    assert (err.row, err.column) == (4, "label") and "'Exact' mixes words with numbers" in str(err)


@pytest.mark.parametrize("bad", ["NaN", "inf", "-Infinity"])
def test_non_finite_label(tmp_path, bad):
    path = judgments_csv(tmp_path, [("deck", "p1", "3"), ("deck", "p2", bad), ("deck", "p3", "1")])
    err = error_of(load_judgments, path)
    assert err.row == 3 and f"'{bad}' is not a finite number" in str(err)
    assert load_judgments(path, on_invalid="skip").skipped == {"invalid label": 1}


def test_negative_graded_label(tmp_path):
    err = error_of(load_judgments, judgments_csv(tmp_path, [("deck", "p1", "2"), ("deck", "p2", "-2")]))
    assert err.row == 3 and "'-2' is negative" in str(err)


def test_no_relevant_judgment_at_all(tmp_path):
    err = error_of(load_judgments, judgments_csv(tmp_path, [("mug", "p1", "I"), ("cup", "p2", "C")]))
    assert "no judged query has a relevant product (gain ≥ 1.0)" in str(err)


# -- duplicates -----------------------------------------------------------------------------------

def test_duplicate_judgment_with_same_gain_is_kept_once(tmp_path):
    rows = [("Red Mug", "p1", "E"), ("red  mug", "p1", "exact"), ("red mug", "p2", "I")]
    j = load_judgments(judgments_csv(tmp_path, rows))
    assert j.product_ids == ["p1", "p2"] and j.skipped == {"duplicate judgment": 1}
    assert j.keys() == ["red mug"] and j.query_text("red mug") == "Red Mug"


def test_conflicting_duplicate_names_both_rows(tmp_path):
    rows = [("mug", "p1", "E"), ("cup", "p2", "E"), ("Mug", "p1", "S")]
    path = judgments_csv(tmp_path, rows)
    err = error_of(load_judgments, path, on_conflict="error")
    assert err.row == 4 and "as 'S', but row 2 already gave 'E'" in str(err)
    first = load_judgments(path, on_conflict="first")
    assert first.labels == ["E", "E"] and first.skipped == {"conflicting duplicate (first kept)": 1}
    assert first.gains.tolist() == [1.0, 1.0]
    # Default: a documented handling, counted and reported with the rows: the gains are averaged.
    mean = load_judgments(path)
    assert mean.gains.tolist() == [pytest.approx(0.55), 1.0]
    assert mean.skipped == {"conflicting duplicate (gains averaged)": 1}
    assert mean.conflict_examples == ["rows 2 and 4: 'E' vs 'S'"]


# -- products and the catalog ---------------------------------------------------------------------

def test_unknown_products_are_dropped_and_counted(tmp_path, catalog):
    rows = [("mug", "p1", "E"), ("mug", "x9", "S"), ("cup", "p2", "E"), ("cup", "p3", "I"), ("lamp", "p4", "E")]
    j = load_judgments(judgments_csv(tmp_path, rows), catalog)
    assert j.product_ids == ["p1", "p2", "p3", "p4"]
    assert j.unknown_products == 1 and j.unknown_examples == ["row 3: product_id 'x9'"]
    err = error_of(load_judgments, judgments_csv(tmp_path, rows), catalog, on_unknown_product="error")
    assert (err.row, err.column) == (3, "product_id") and "'x9' is not in the catalog" in str(err)


def test_wrong_id_column_is_an_error_not_a_silent_evaluation(tmp_path, catalog):
    text = "id,product_id,query,relevance\n" + "".join(
        f"{100 + i},p{i},query {i % 3},{1 + i % 3}\n" for i in range(1, 10))
    path = write(tmp_path, "j.csv", text)
    assert load_judgments(path, catalog).id_field == "product_id"
    err = error_of(load_judgments, path, catalog, id_field="id")
    assert "9 of 9 judgments name products not in the catalog" in str(err)
    assert "the id column 'id' probably does not match the catalog's 'product_id'" in str(err)
    assert err.hint.startswith("pass --judgment-id-field product_id")


def test_product_column_detection(tmp_path):
    both = write(tmp_path, "a.csv", "id,product_uid,search_term,relevance\n1,p1,mug,3\n2,p2,mug,1\n")
    assert load_judgments(both).id_field == "product_uid"
    only_id = write(tmp_path, "b.csv", "id,query,label\np1,mug,1\n")
    assert load_judgments(only_id).id_field == "id"
    # with a catalog, its id column name wins over other candidates
    by_sku = load_catalog(write(tmp_path, "skus.csv", "product_id,sku,title\nzz,p1,Mug\n"), id_field="sku")
    prefer = write(tmp_path, "c.csv", "product_id,sku,query,label\nzz,p1,mug,1\n")
    assert load_judgments(prefer).id_field == "product_id"
    assert load_judgments(prefer, by_sku).id_field == "sku"


def test_missing_and_wrong_explicit_columns(tmp_path):
    err = error_of(load_judgments, write(tmp_path, "a.csv", "text,product_id,label\nmug,p1,1\n"))
    assert "no query column found" in str(err) and "--query-field" in err.hint
    err = error_of(load_judgments, write(tmp_path, "b.csv", "query,product_id,stars\nmug,p1,1\n"))
    assert "no label column found" in str(err) and "'stars'" in str(err)
    path = write(tmp_path, "c.csv", "query,product_id,label\nmug,p1,1\n")
    err = error_of(load_judgments, path, label_field="grade")
    assert "label column 'grade' is not in the file" in str(err)
    assert load_judgments(path, query_field="QUERY").query_field == "query"


# -- the Judgments object -------------------------------------------------------------------------

def test_qrels_subset_and_merge(tmp_path):
    rows = [("mug", "p1", "1"), ("mug", "p2", "0"), ("Lamp", "p3", "1"), ("cup", "p4", "1")]
    j = load_judgments(judgments_csv(tmp_path, rows))
    assert j.keys() == ["mug", "lamp", "cup"]
    assert j.qrels() == {"mug": {"p1": 1.0, "p2": 0.0}, "lamp": {"p3": 1.0}, "cup": {"p4": 1.0}}
    assert j.qrels(["lamp"]) == {"lamp": {"p3": 1.0}}
    sub = j.subset({"mug", "cup"})
    assert sub.product_ids == ["p1", "p2", "p4"] and sub.rows.tolist() == [2, 3, 5]
    with pytest.raises(SparsefitError, match="not in the judgments"):
        j.subset({"bowl"})
    other = load_judgments(judgments_csv(tmp_path, [("bowl", "p5", "1"), ("mug", "p1", "1")], name="t.csv"))
    merged = j.merge(other)
    assert merged.keys() == ["mug", "lamp", "cup", "bowl"] and len(merged) == 5
    assert merged.skipped == {"duplicate judgment": 1}
    conflicting = load_judgments(judgments_csv(tmp_path, [("mug", "p1", "0"), ("cup", "p9", "1")], name="c.csv"))
    with pytest.raises(SparsefitError, match="labelled '0' here but '1'"):
        j.merge(conflicting)


def test_a_test_file_can_reuse_the_training_scheme(tmp_path):
    train = load_judgments(judgments_csv(tmp_path, [("deck", "p1", "3"), ("deck", "p2", "1")]))
    path = judgments_csv(tmp_path, [("fence", "p3", "3"), ("fence", "p4", "2")], name="test.csv")
    assert load_judgments(path).gains.tolist() == [1.0, 0.0]  # on its own: range 2–3
    test = load_judgments(path, scheme=train.scheme)
    assert test.gains.tolist() == [2.0, 1.0]
    assert len(train.merge(test)) == 4
    with pytest.raises(SparsefitError, match="label scheme"):
        train.merge(load_judgments(path))


def test_label_scheme_gain_and_describe():
    scheme = LabelScheme("esci", {"exact": 1.0, "substitute": 0.1, "complement": 0.01, "irrelevant": 0.0}, 1.0)
    assert scheme.gain("e") == 1.0 and scheme.gain("Substitute") == 0.1 and scheme.gain("X") is None
    assert scheme.describe() == "esci (exact=1, substitute=0.1, complement=0.01, irrelevant=0; relevant ≥ 1.0 gain)"


def test_jsonl_judgments_use_line_numbers(tmp_path):
    text = '{"query": "mug", "product_id": "p1", "label": 1}\n{"query": "mug", "product_id": "p2", "label": null}\n'
    err = error_of(load_judgments, write(tmp_path, "j.jsonl", text))
    assert err.row == 2 and "label is blank" in str(err)


@pytest.mark.parametrize("text, fragment", [
    ('{"query": "mug", "product_id": "p1", "label": 1}\n{"query": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
     "more than 64 levels deep"),  # was a RecursionError
    ('{"query": "mug", "product_id": "p1", "label": 1}\n{"query": "cup \\udc00", "product_id": "p2", "label": 1}\n',
     "lone surrogate escape"),  # was a UnicodeEncodeError
])
def test_judgment_files_that_crashed_the_reader_are_clear_errors(tmp_path, catalog, text, fragment):
    err = error_of(load_judgments, write(tmp_path, "j.jsonl", text), catalog)
    assert err.row == 2 and fragment in str(err)


def test_compressed_judgments_are_capped(tmp_path, catalog):
    path = tmp_path / "j.csv.gz"
    path.write_bytes(gzip.compress(b"query,product_id,label\n" + b"mug,p1,1\n" * 1000))
    assert "exceeds the 1,000 bytes limit" in str(error_of(load_judgments, path, catalog, max_decompressed_bytes=1000))
    assert len(load_judgments(path, catalog, max_decompressed_bytes=None, on_conflict="first")) == 1


# -- the real Home Depot data ---------------------------------------------------------------------

def test_home_depot_loads_with_no_flags(homedepot):
    catalog = load_catalog(homedepot / "products.csv")
    assert len(catalog) == 54_667 and catalog.id_field == "product_uid"
    # "fence mesh" and "fence  mesh" (two spaces) are one query once spaces are collapsed, and three of
    # their products are labelled differently under the two spellings: an error on request, averaged by default.
    err = error_of(load_judgments, homedepot / "judgments.csv", catalog, on_conflict="error")
    assert err.row == 3254 and "row 3253 already gave '2.33'" in str(err)
    judgments = load_judgments(homedepot / "judgments.csv", catalog)
    assert judgments.id_field == "product_uid" and judgments.label_field == "relevance"
    assert judgments.query_field == "search_term"
    assert judgments.scheme.name == "graded" and judgments.scheme.relevant_threshold == 1.0
    assert judgments.gains.min() == 0.0 and judgments.gains.max() == 2.0
    assert np.all((judgments.gains >= 0) & (judgments.gains <= 2))
    assert len(judgments.keys()) == 9_398  # 9,399 distinct raw search terms, minus the "fence  mesh" spelling
    assert judgments.skipped == {"conflicting duplicate (gains averaged)": 3} and judgments.unknown_products == 0
    assert judgments.conflict_examples[0] == "rows 3253 and 3254: '2.33' vs '1.67'"
    assert len(judgments) == 58_924 - 3
