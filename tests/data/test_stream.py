"""A table file read a chunk at a time gives the tables (values, row numbers, errors) of the whole file."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

import sparsefit.data.stream as stream_module
from sparsefit.data import read_table
from sparsefit.data.stream import stream_table
from sparsefit.errors import SparsefitError
from tests.conftest import EXAMPLES
from tests.helpers import error_of

TRICKY_CSV = (
    "\ufeffsku,title,price,note\n"
    '001,"Mug, large",4,"two\nlines"\n'
    "\n"
    "002,Crème brûlée dish ☕,5.5,\n"
    '003,"Quote ""inside""",6,x\r\n'
    "004,Last,7,y"
)


def chunks(path, size, **options):
    with stream_table(path, chunk_size=size, **options) as stream:
        return list(stream)


def assert_same_as_whole(path, size, **options):
    whole = read_table(path, **options)
    parts = chunks(path, size, **options)
    assert [len(t) for t in parts[:-1]] == [size] * (len(parts) - 1)
    frame = pd.concat([t.frame for t in parts], ignore_index=True)
    pd.testing.assert_frame_equal(frame, whole.frame)
    assert [r for t in parts for r in t.rows.tolist()] == whole.rows.tolist()
    return parts, whole


@pytest.mark.parametrize("block", [1, 5, 64, 1 << 20])
@pytest.mark.parametrize("size", [1, 2, 10])
def test_delimited_chunks_equal_the_whole_file_whatever_the_blocks(tmp_path, monkeypatch, block, size):
    monkeypatch.setattr(stream_module, "BLOCK_BYTES", block)  # quotes, line breaks and UTF-8 split across blocks
    path = tmp_path / "p.csv"
    path.write_bytes(TRICKY_CSV.encode("utf-8"))
    assert_same_as_whole(path, size)
    gz = tmp_path / "p.csv.gz"
    gz.write_bytes(gzip.compress(TRICKY_CSV.encode("utf-8")))
    assert_same_as_whole(gz, size)


def test_the_demo_catalog_in_chunks_is_the_demo_catalog():
    parts, whole = assert_same_as_whole(EXAMPLES / "catalog.csv", 64)
    typed = pd.concat([t.typed() for t in parts], ignore_index=True)
    pd.testing.assert_frame_equal(typed, whole.typed())


@pytest.mark.parametrize("text, options", [
    ("sku,title\n1,ok\n2,caf\xe9\n", {}),  # latin-1 bytes in a UTF-8 file
    ("sku,title\n1,ok\n2,\"open quote\n", {}),
    ("sku,title,price\n1,a,2\n2,b,3,4,5\n", {}),
    ("sku,sku\n1,2\n", {}),
    ("sku,title\n", {}),
    ("  \n\n", {}),
    ("", {}),
    ("sku,title\n1,caf\xe9\n", {"encoding": "no-such-codec"}),
])
def test_errors_are_the_whole_files_errors(tmp_path, monkeypatch, text, options):
    monkeypatch.setattr(stream_module, "BLOCK_BYTES", 4)
    path = tmp_path / "p.csv"
    path.write_bytes(text.encode("latin-1"))
    assert str(error_of(chunks, path, 1, **options)) == str(error_of(read_table, path, **options))


def test_a_bad_byte_deep_in_the_file_is_placed_like_in_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_module, "BLOCK_BYTES", 1000)
    path = tmp_path / "p.csv"
    path.write_bytes(("sku,title\n" + "".join(f"{i},product {i}\n" for i in range(500))).encode() + b"9,bad\xff\n")
    message = str(error_of(chunks, path, 7))
    assert message == str(error_of(read_table, path)) and "row 502" in message


def test_other_encodings_stream_too(tmp_path, monkeypatch):
    monkeypatch.setattr(stream_module, "BLOCK_BYTES", 3)
    for encoding in ("latin-1", "utf-16"):
        path = tmp_path / f"p-{encoding}.csv"
        path.write_bytes("sku,title\n1,café\n2,crème\n".encode(encoding))
        assert_same_as_whole(path, 1, encoding=encoding)


def test_json_lines_chunks_get_the_columns_of_earlier_chunks(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1", "title": "Mug", "price": 3}\n\n{"id": "2", "title": "Cup", "tags": ["a"]}\n'
                    '{"id": "3", "name": "Jug"}\n', encoding="utf-8")
    parts = chunks(path, 1)
    assert [t.rows.tolist() for t in parts] == [[1], [3], [4]]
    assert parts[2].columns == ["id", "title", "price", "tags", "name"]
    assert parts[2].frame.iloc[0].tolist() == ["3", "", "", "", "Jug"]
    assert parts[2].typed().iloc[0].isna().tolist() == [False, True, True, True, False]


def test_json_lines_errors_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "1"}\n{"id": 2\n', encoding="utf-8")
    assert str(error_of(chunks, path, 1)) == str(error_of(read_table, path))


def test_a_json_list_is_refused_and_json_lines_in_a_json_file_is_read(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"id": "1", "title": "Mug"}]), encoding="utf-8")
    assert "convert it to JSON Lines" in str(error_of(chunks, listed, 10))
    lines = tmp_path / "lines.json"
    lines.write_text('{"id": "1", "title": "Mug"}\n{"id": "2", "title": "Cup"}\n', encoding="utf-8")
    assert [t.frame["id"].tolist() for t in chunks(lines, 10)] == [["1", "2"]]


def test_parquet_is_read_a_batch_at_a_time(tmp_path):
    frame = pd.DataFrame({"sku": [f"{i:03d}" for i in range(10)], "title": [f"t{i}" for i in range(10)],
                          "price": [float(i) for i in range(10)], "tags": [["a", "b"]] * 10})
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    with stream_table(path, chunk_size=4) as stream:
        assert stream.records == 10
        parts = list(stream)
        assert stream.fraction() == 1.0
    whole = read_table(path)
    assert [t.rows.tolist() for t in parts] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    pd.testing.assert_frame_equal(pd.concat([t.frame for t in parts], ignore_index=True), whole.frame)
    assert parts[0].nested == {"tags": "list"}
    gz = tmp_path / "p.parquet.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert "decompress it first" in str(error_of(stream_table, gz, chunk_size=4))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert str(error_of(chunks, broken, 4)) == str(error_of(read_table, broken))


def test_a_column_keeps_the_type_its_first_values_fixed(tmp_path):
    path = tmp_path / "p.csv"
    rows = ["sku,price,size,zip,sale", "a,4.5,1,12345,", "b,3,2,02134,", "c,2,big,54321,1.5", "d,,3,99999,2"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with stream_table(path, chunk_size=1) as stream:
        parts = list(stream)
        notes = stream.type_notes
    values = {column: [t.typed()[column].iloc[0] for t in parts] for column in ("price", "size", "zip", "sale")}
    assert all(isinstance(v, float) for v in values["price"][:3])  # 3 and 2 as decimals, as in the whole file
    assert values["size"][2] == "big" and int(values["size"][3]) == 3  # "big" stays text, and says so
    assert values["zip"][1] == "02134"  # a leading zero stays text in a number column
    assert values["sale"][2] == 1.5 and pd.isna(values["sale"][0])  # fixed by the first chunk with a value
    assert notes == [
        "column 'zip' holds whole numbers in the first rows, but row 3 holds '02134': such values stay text in the payload",
        "column 'size' holds whole numbers in the first rows, but row 4 holds 'big': such values stay text in the payload",
    ]


def test_a_chunk_size_below_one_is_refused(tmp_path):
    assert "chunk size" in str(error_of(stream_table, EXAMPLES / "catalog.csv", chunk_size=0))
    with pytest.raises(SparsefitError, match="file not found"):
        stream_table(tmp_path / "missing.csv", chunk_size=5)
