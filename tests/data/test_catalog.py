"""Reading catalogs from every format, and every way a catalog can be wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsefit.data import load_catalog, read_table
from tests.helpers import error_of

PRODUCTS_CSV = (
    "sku,title,brand,category,price,rating,in_stock\n"
    "00123,Red  Mug,Acme,Kitchen,4,4.5,true\n"
    "00124,Blue cup,,Kitchen,5,,false\n"
    "A-7,Desk lamp,Lux,,12,3.0,true\n"
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- formats --------------------------------------------------------------------------------------

def test_csv_keeps_ids_as_text_and_types_the_payload(tmp_path):
    catalog = load_catalog(write(tmp_path, "p.csv", PRODUCTS_CSV))
    assert catalog.ids == ["00123", "00124", "A-7"]
    assert catalog.id_field == "sku"
    assert catalog.text_fields == ["title", "brand", "category"]
    assert catalog.texts == ["Red Mug. Acme. Kitchen", "Blue cup. Kitchen", "Desk lamp. Lux"]
    assert catalog.payload_of(0) == {
        "sku": "00123", "title": "Red  Mug", "brand": "Acme", "category": "Kitchen",
        "price": 4, "rating": 4.5, "in_stock": True,
    }
    second = catalog.payload_of(1)
    assert "rating" not in second and "brand" not in second  # missing values left out, never NaN
    assert type(second["price"]) is int and second["in_stock"] is False
    assert json.loads(json.dumps(second)) == second
    assert len(catalog) == 3 and catalog.position("A-7") == 2
    assert catalog.rows.tolist() == [2, 3, 4]


def test_unknown_product_position_is_a_clear_error(tmp_path):
    catalog = load_catalog(write(tmp_path, "p.csv", PRODUCTS_CSV))
    err = error_of(catalog.position, "123")
    assert "'123' is not in the catalog" in str(err)


def test_tsv_and_txt_and_sniffed_delimiters(tmp_path):
    tsv = PRODUCTS_CSV.replace(",", "\t")
    semicolon = PRODUCTS_CSV.replace(",", ";")
    for name, text in [("p.tsv", tsv), ("p.txt", tsv), ("tabs.csv", tsv), ("semi.csv", semicolon)]:
        catalog = load_catalog(write(tmp_path, name, text))
        assert catalog.ids == ["00123", "00124", "A-7"], name
        assert catalog.payload_of(2)["price"] == 12, name


def test_quoted_commas_and_line_breaks_in_csv(tmp_path):
    text = 'id,title\n1,"Mug, red"\n2,"Two\nlines"\n3,Plain\n'
    table = read_table(write(tmp_path, "p.csv", text))
    assert table.frame["title"].tolist() == ["Mug, red", "Two\nlines", "Plain"]
    assert table.rows.tolist() == [2, 3, 4]  # spreadsheet rows, not text lines
    assert load_catalog(tmp_path / "p.csv").texts[1] == "Two lines"


def test_json_list(tmp_path):
    records = [{"asin": "0012", "name": "Lamp", "price": 3}, {"asin": "0013", "name": "Bulb", "price": None}]
    catalog = load_catalog(write(tmp_path, "p.json", json.dumps(records)))
    assert catalog.ids == ["0012", "0013"] and catalog.texts == ["Lamp", "Bulb"]
    assert catalog.payload_of(0) == {"asin": "0012", "name": "Lamp", "price": 3}
    assert catalog.payload_of(1) == {"asin": "0013", "name": "Bulb"}


def test_json_object_wrapping_the_records_is_rejected_with_a_hint(tmp_path):
    path = write(tmp_path, "p.json", json.dumps({"products": [{"id": "1", "title": "Lamp"}]}))
    err = error_of(load_catalog, path)
    assert "JSON must be a list of objects or JSON Lines" in str(err)
    assert "products" in err.hint


def test_json_syntax_error_names_the_line(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.json", '[\n{"id": "1", "title": "a"},\n{"id": 2,}\n]'))
    assert "invalid JSON at line 3" in str(err)


def test_jsonl_numbers_rows_by_line(tmp_path):
    text = '{"id": "1", "title": "Lamp"}\n\n{"id": "2", "title": "Bulb"}\n{"id": "1", "title": "Again"}\n'
    path = write(tmp_path, "p.jsonl", text)
    assert read_table(path).rows.tolist() == [1, 3, 4]
    err = error_of(load_catalog, path)
    assert err.row == 4 and "repeats id '1' from row 1" in str(err)
    # JSON Lines saved with a .json extension are accepted too
    assert load_catalog(write(tmp_path, "lines.json", text), on_invalid="skip").ids == ["1", "2"]


def test_jsonl_bad_line_is_named(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.ndjson", '{"id": "1", "title": "a"}\n{"id": "2", "title": \n'))
    assert err.row == 2 and "invalid JSON" in str(err)


def test_parquet_with_nested_columns(tmp_path):
    table = pa.table({
        "product_id": pa.array([1, 2, 3], pa.int64()),
        "title": ["Lamp", "Bulb", "Desk"],
        "tags": pa.array([["light", "home"], [], None], pa.list_(pa.string())),
        "specs": pa.array([{"watts": 40}, {"watts": 60}, None], pa.struct([("watts", pa.int64())])),
        "price": pa.array([1.5, None, 3.0]),
    })
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    catalog = load_catalog(path)
    assert catalog.ids == ["1", "2", "3"] and catalog.text_fields == ["title"]
    assert catalog.payload_of(0) == {"product_id": "1", "title": "Lamp", "tags": ["light", "home"],
                                     "specs": {"watts": 40}, "price": 1.5}
    assert "price" not in catalog.payload_of(1)
    assert load_catalog(path, text_fields=["title", "tags"]).texts == ["Lamp. light, home", "Bulb", "Desk"]
    err = error_of(load_catalog, path, text_fields="specs")
    assert err.column == "specs" and "nested objects" in str(err)
    err = error_of(load_catalog, path, id_field="tags")
    assert err.column == "tags" and "can't be used as an id" in str(err)


def test_parquet_errors(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "bad.parquet", b"not parquet at all"))
    assert "not a readable Parquet file" in str(err)
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "title": pa.array([], pa.string())}), path)
    assert "no rows" in str(error_of(load_catalog, path))


# -- encodings ------------------------------------------------------------------------------------

def test_utf8_bom_is_ignored(tmp_path):
    path = write(tmp_path, "p.csv", "\ufeffproduct_id,title\n1,Crème brûlée\n".encode("utf-8"))
    catalog = load_catalog(path)
    assert catalog.id_field == "product_id" and catalog.texts == ["Crème brûlée"]


def test_latin1_bytes_are_an_error_naming_row_and_offset(tmp_path):
    data = "product_id,title\n1,Mug\n2,Crème\n".encode("latin-1")
    path = write(tmp_path, "p.csv", data)
    err = error_of(load_catalog, path)
    assert err.row == 3
    offset = data.index("è".encode("latin-1"))
    assert f"byte 0xe8 at byte offset {offset} is not valid UTF-8" in str(err)
    assert "--encoding latin-1" in err.hint
    assert load_catalog(path, encoding="latin-1").texts == ["Mug", "Crème"]


def test_unknown_encoding(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", PRODUCTS_CSV), encoding="klingon")
    assert "unknown encoding 'klingon'" in str(err)


# -- files that are not tables --------------------------------------------------------------------

def test_missing_file(tmp_path):
    err = error_of(load_catalog, tmp_path / "nope.csv")
    assert "file not found" in str(err) and err.file.endswith("nope.csv")


def test_folder_instead_of_file(tmp_path):
    write(tmp_path, "products.csv", PRODUCTS_CSV)
    err = error_of(load_catalog, tmp_path)
    assert "is a folder" in str(err) and "products.csv" in err.hint


def test_unsupported_extension(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.xlsx", b"PK\x03\x04"))
    assert "unsupported file type '.xlsx'" in str(err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "p.csv", PRODUCTS_CSV)
    path.chmod(0)
    try:
        assert "permission denied" in str(error_of(load_catalog, path))
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    assert "file is empty" in str(error_of(load_catalog, write(tmp_path, "p.csv", content)))


def test_header_only_file(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title\n"))
    assert "header but no rows" in str(err)
    assert "no records" in str(error_of(load_catalog, write(tmp_path, "p.json", "[]")))


def test_row_with_too_few_fields(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title,brand\n1,Mug,Acme\n2,Cup\n"))
    assert err.row == 3 and "has 2 fields but the header has 3" in str(err)


def test_row_with_too_many_fields(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title\n1,Mug\n2,Cup, large\n"))
    assert err.row == 3 and "has 3 fields" in str(err) and "quote" in err.hint


def test_trailing_delimiter_is_tolerated(tmp_path):
    assert load_catalog(write(tmp_path, "p.csv", "product_id,title\n1,Mug,\n")).texts == ["Mug"]


def test_bad_quoting_names_the_row(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", 'product_id,title\n1,Mug\n2,"Cup" large\n'))
    assert err.row == 3 and "malformed CSV" in str(err)


def test_duplicate_header_column(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title,title\n1,a,b\n"))
    assert err.row == 1 and err.column == "title"


# -- ids ------------------------------------------------------------------------------------------

def test_duplicate_ids_name_both_rows(tmp_path):
    text = "product_id,title\n1,Mug\n2,Cup\n1,Lamp\n2,Bowl\n"
    err = error_of(load_catalog, write(tmp_path, "p.csv", text))
    assert err.row == 4 and err.column == "product_id"
    assert "row 4 repeats id '1' from row 2" in str(err) and "2 repeated ids in all" in str(err)


def test_blank_id_names_row_and_column(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title\n1,Mug\n  ,Cup\n"))
    assert (err.row, err.column) == (3, "product_id") and "id is blank" in str(err)
    assert "--on-invalid skip" in err.hint


def test_empty_text_is_an_error(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title,brand\n1,Mug,Acme\n2,  ,\n"))
    assert err.row == 3 and "has no text" in str(err) and "'2'" in str(err)


def test_skip_mode_counts_every_reason_and_keeps_the_first_duplicate(tmp_path):
    text = "product_id,title\n1,Mug\n,Nameless\n2,\n1,Second mug\n3,Lamp\n2,Cup\n"
    catalog = load_catalog(write(tmp_path, "p.csv", text), on_invalid="skip")
    assert catalog.ids == ["1", "3", "2"]
    assert catalog.texts == ["Mug", "Lamp", "Cup"]
    assert catalog.rows.tolist() == [2, 6, 7]
    assert catalog.skipped == {"blank id": 1, "empty text": 1, "duplicate id": 1}
    assert catalog.payload_of(2)["title"] == "Cup"


def test_skip_mode_with_nothing_left(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title\n,Mug\n"), on_invalid="skip")
    assert "no usable products" in str(err)


def test_ids_are_stripped_and_texts_collapsed(tmp_path):
    catalog = load_catalog(write(tmp_path, "p.csv", 'product_id,title\n" 007 ","  Big \t lamp  "\n'))
    assert catalog.ids == ["007"] and catalog.texts == ["Big lamp"]


def test_id_column_detection_order(tmp_path):
    assert load_catalog(write(tmp_path, "a.csv", "id,sku,title\n1,X1,Mug\n")).id_field == "sku"
    assert load_catalog(write(tmp_path, "b.csv", "Product UID,title\n1,Mug\n")).id_field == "Product UID"
    assert load_catalog(write(tmp_path, "c.csv", "ID,title\n1,Mug\n")).id_field == "ID"


def test_explicit_id_field(tmp_path):
    path = write(tmp_path, "p.csv", "code,sku,title\nc1,s1,Mug\n")
    assert load_catalog(path, id_field="code").ids == ["c1"]
    err = error_of(load_catalog, path, id_field="ean")
    assert "'ean' is not in the file" in str(err) and "'code', 'sku', 'title'" in str(err)


def test_no_id_column_never_falls_back_to_row_numbers(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "code,title\nc1,Mug\n"))
    assert "no id column found" in str(err) and "'code'" in str(err) and "--id-field" in err.hint


# -- text -----------------------------------------------------------------------------------------

def test_text_detection_takes_one_column_per_group_in_order(tmp_path):
    text = "description,product_id,name,title,brand,features\nA red mug.,1,Mug name,Mug,Acme,ceramic\n"
    catalog = load_catalog(write(tmp_path, "p.csv", text))
    assert catalog.text_fields == ["title", "brand", "description", "features"]
    assert catalog.texts == ["Mug. Acme. A red mug. ceramic"]


def test_explicit_text_fields(tmp_path):
    path = write(tmp_path, "p.csv", PRODUCTS_CSV)
    assert load_catalog(path, text_fields=["brand", "title"]).texts[0] == "Acme. Red Mug"
    assert load_catalog(path, text_fields="category, title").text_fields == ["category", "title"]
    err = error_of(load_catalog, path, text_fields=["title", "colour"])
    assert "'colour' is not in the file" in str(err) and "--text-fields" in err.hint


def test_no_text_column(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,price\n1,3\n"))
    assert "no text column found" in str(err) and "--text-fields" in err.hint


def test_template(tmp_path):
    path = write(tmp_path, "p.csv", PRODUCTS_CSV)
    catalog = load_catalog(path, template="{brand}: {title} ({category})")
    assert catalog.texts == ["Acme: Red Mug (Kitchen)", ": Blue cup (Kitchen)", "Lux: Desk lamp ()"]
    assert catalog.text_fields == ["brand", "title", "category"]
    assert catalog.template == "{brand}: {title} ({category})"


def test_template_with_unknown_field(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", PRODUCTS_CSV), template="{brand} {colour}")
    assert "'{colour}' is not a column" in str(err) and "'title'" in str(err)


def test_template_with_all_fields_blank_is_empty_text(tmp_path):
    path = write(tmp_path, "p.csv", "product_id,title,brand\n1,Mug,Acme\n2,,\n")
    err = error_of(load_catalog, path, template="{brand}: {title}")
    assert err.row == 3 and "has no text" in str(err)


def test_fingerprint_follows_ids_and_texts(tmp_path):
    first = load_catalog(write(tmp_path, "a.csv", "product_id,title\n1,Mug\n"))
    same = load_catalog(write(tmp_path, "b.csv", "product_id,title,price\n1,Mug,3\n"))
    other = load_catalog(write(tmp_path, "c.csv", "product_id,title\n1,Cup\n"))
    assert first.fingerprint() == same.fingerprint() != other.fingerprint()
    assert len(first.fingerprint()) == 64


# -- inputs that crashed the loaders (found by tests/data/test_properties.py, or by review) --------

@pytest.mark.parametrize("name, text, row, column", [
    ("p.json", "[" * 100_000 + "]" * 100_000, None, None),  # deeper than the JSON parser's recursion
    ("p.jsonl", '{"id": "1", "title": "a"}\n{"id": "2", "title": ' + "[" * 100_000 + "]" * 100_000 + "}\n", 2, None),
    # parses, but too deep for the code downstream
    ("p.json", '[{"id": "1", "title": "a", "specs": ' + "[" * 500 + "]" * 500 + "}]", 1, "specs"),
])
def test_deeply_nested_json_is_a_clear_error_not_a_recursion_error(tmp_path, name, text, row, column):
    err = error_of(load_catalog, write(tmp_path, name, text))
    assert "nests lists or objects more than 64 levels deep" in str(err) and "flatten" in err.hint
    assert (err.row, err.column) == (row, column)


def test_json_nested_a_few_levels_still_loads(tmp_path):
    records = [{"id": "1", "title": "Lamp", "specs": {"a": [[{"b": [1, 2]}]]}}]
    catalog = load_catalog(write(tmp_path, "p.json", json.dumps(records)))
    assert catalog.payload_of(0)["specs"] == {"a": [[{"b": [1, 2]}]]}


def test_csv_integer_too_long_for_python_stays_text(tmp_path):
    digits = "9" * 5000  # int() refuses more than 4,300 digits
    catalog = load_catalog(write(tmp_path, "p.csv", f"product_id,title,code\n1,Mug,{digits}\n2,Cup,7\n"))
    assert catalog.payload_of(0)["code"] == digits and catalog.payload_of(1)["code"] == "7"


def test_csv_number_too_large_for_a_float_stays_text_instead_of_vanishing(tmp_path):
    catalog = load_catalog(write(tmp_path, "p.csv", "product_id,title,size\n1,Mug,1e999\n2,Cup,2.5\n"))
    assert catalog.payload_of(0)["size"] == "1e999" and catalog.payload_of(1)["size"] == "2.5"


@pytest.mark.parametrize("name", ["p.json", "p.jsonl"])
def test_json_integer_too_long_for_python_stays_text(tmp_path, name):
    digits = "9" * 5000
    record = '{"id": "1", "title": "Mug", "code": ' + digits + "}"
    catalog = load_catalog(write(tmp_path, name, f"[{record}]" if name.endswith(".json") else record + "\n"))
    assert catalog.ids == ["1"] and catalog.payload_of(0)["code"] == digits


@pytest.mark.parametrize("name, record", [
    ("p.json", '[{"id": "1", "title": "Mug \\ud83d"}]'),
    ("p.jsonl", '{"id": "1", "title": "Mug \\ud83d"}\n'),
    ("p.json", '[{"id": "1", "title": "Mug"}, {"id": "2", "title": "Cup", "x\\udc00": 1}]'),
])
def test_json_lone_surrogate_escape_is_a_clear_error(tmp_path, name, record):
    err = error_of(load_catalog, write(tmp_path, name, record))
    assert "lone surrogate escape" in str(err) and "pairs" in err.hint
    str(err).encode("utf-8")  # the message itself prints anywhere


def test_json_surrogate_pair_escape_is_a_character(tmp_path):
    catalog = load_catalog(write(tmp_path, "p.json", '[{"id": "1", "title": "Mug \\ud83d\\ude00"}]'))
    assert catalog.texts == ["Mug \U0001f600"]


def test_encoding_that_decodes_to_lone_surrogates_is_a_clear_error(tmp_path):
    path = write(tmp_path, "p.csv", b"product_id,title\n1,Mug \\ud800\n")
    err = error_of(load_catalog, path, encoding="unicode_escape")
    assert err.row == 2 and "lone surrogate (U+D800)" in str(err) and "--encoding" in err.hint


@pytest.mark.parametrize("codec", ["punycode", "idna"])
def test_codec_that_fails_without_a_position_is_a_clear_error(tmp_path, codec):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "product_id,title\n1,mug.xn--[\n"), encoding=codec)
    assert f"can't decode the file as {codec}" in str(err) and "--encoding" in err.hint


def test_parquet_text_that_is_not_utf8_is_a_clear_error(tmp_path):
    offsets = pa.array([0, 3, 6], pa.int32()).buffers()[1]
    titles = pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(b"Mug\xff\xfeX")])
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"product_id": ["1", "2"], "title": titles}), path)
    err = error_of(load_catalog, path)
    assert "not a readable Parquet file" in str(err) and "UTF8" in str(err)


def test_invalid_byte_after_a_utf8_bom_is_reported_at_its_file_offset(tmp_path):
    data = "\ufeffproduct_id,title\n1,Mug\n2,Cr".encode("utf-8") + b"\xe8me\n"
    offset = data.index(b"\xe8")
    err = error_of(load_catalog, write(tmp_path, "p.csv", data))
    assert err.row == 3 and f"byte 0xe8 at byte offset {offset} is not valid UTF-8" in str(err)


def test_blank_line_above_the_header_is_named(tmp_path):
    err = error_of(load_catalog, write(tmp_path, "p.csv", "\nproduct_id,title\n1,Mug\n"))
    assert err.row == 1 and "should be the header, is blank" in str(err) and "delete the blank line" in err.hint
