"""Compressed inputs: read as a stream, capped on the decompressed size, identical to the plain file otherwise.

A 4 MB .gz can hold gigabytes; the loaders must refuse it with a clear error before memory grows.
The bombs here are built by repeating one compressed stream (gzip, bzip2 and xz all read concatenated
streams as one), so a 256 MB bomb costs a few hundred KB of disk and milliseconds to write.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsefit.data import load_catalog, load_judgments, read_table
from sparsefit.data.raw import DEFAULT_MAX_DECOMPRESSED_BYTES
from sparsefit.errors import SparsefitError
from tests.helpers import error_of

MB = 1024**2
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
CATALOG = "sku,title,brand,price\n00123,Red mug,Acme,4\n00124,Blue cup,,5.5\nA-7,Café lamp,Lux,12\n"
JUDGMENTS = "query,sku,label\nred mug,00123,E\nred mug,00124,S\nlamp,A-7,E\n"


def write_bomb(path: Path, compress: Callable[[bytes], bytes], megabytes: int) -> Path:
    """A compressed CSV that expands to ``megabytes`` MB: a header, then one huge field of spaces."""
    first = compress(b"sku,title\n1," + b" " * (MB - 12))
    rest = compress(b" " * MB)
    with path.open("wb") as out:
        out.write(first)
        for _ in range(megabytes - 1):
            out.write(rest)
    return path


@pytest.fixture
def products(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(CATALOG, encoding="utf-8")
    return load_catalog(path)


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_a_bomb_over_the_cap_is_refused_naming_file_limit_and_fix(tmp_path, suffix):
    bomb = write_bomb(tmp_path / f"catalog.csv{suffix}", COMPRESSORS[suffix], 64)
    assert bomb.stat().st_size < 2 * MB  # small on disk, 64 MB inside
    err = error_of(load_catalog, bomb, max_decompressed_bytes=MB)
    assert str(err).startswith(f"{bomb}: decompressed size exceeds the 1 MB limit. Fix: decompress it yourself")
    assert "SPARSEFIT_MAX_DECOMPRESSED_MB" in err.hint and "max_decompressed_bytes" in err.hint


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_judgments_are_capped_too(tmp_path, products, suffix):
    bomb = write_bomb(tmp_path / f"judgments.csv{suffix}", COMPRESSORS[suffix], 8)
    err = error_of(load_judgments, bomb, products, max_decompressed_bytes=2 * MB)
    assert "exceeds the 2 MB limit" in str(err) and err.file == str(bomb)


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_the_cap_is_on_decompressed_bytes_exactly(tmp_path, suffix):
    data = CATALOG.encode("utf-8")
    path = tmp_path / f"p.csv{suffix}"
    path.write_bytes(COMPRESSORS[suffix](data))
    assert load_catalog(path, max_decompressed_bytes=len(data)).ids == ["00123", "00124", "A-7"]
    err = error_of(load_catalog, path, max_decompressed_bytes=len(data) - 1)
    assert f"exceeds the {len(data) - 1:,} bytes limit" in str(err)


def test_no_cap_when_none_and_plain_files_are_never_capped(tmp_path):
    bomb = write_bomb(tmp_path / "p.csv.gz", gzip.compress, 3)
    assert len(read_table(bomb, max_decompressed_bytes=None).frame["title"][0]) == 3 * MB - 12
    plain = tmp_path / "p.csv"
    plain.write_text(CATALOG, encoding="utf-8")
    assert len(read_table(plain, max_decompressed_bytes=10)) == 3  # the cap guards decompression only


def test_the_default_cap_is_512_mb():
    assert DEFAULT_MAX_DECOMPRESSED_BYTES == 512 * MB


@pytest.mark.parametrize("bad", [-1, 1.5, "1024", True])
def test_an_invalid_cap_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "p.csv"
    path.write_text(CATALOG, encoding="utf-8")
    err = error_of(load_catalog, path, max_decompressed_bytes=bad)
    assert "max_decompressed_bytes must be a whole number of bytes" in str(err)


def _parquet(text: str) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(pd.read_csv(io.StringIO(text), dtype=str), preserve_index=False), out)
    return out.getvalue()


def _as(name: str, text: str) -> bytes:
    """The catalog in the format ``name`` names, as bytes."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    records = frame.to_dict(orient="records")
    if name.endswith(".json"):
        return json.dumps(records).encode("utf-8")
    if name.endswith(".jsonl"):
        return "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    if name.endswith(".tsv"):
        return text.replace(",", "\t").encode("utf-8")
    if name.endswith(".parquet"):
        return _parquet(text)
    return ("\ufeff" + text).encode("utf-8")  # a BOM, which must be dropped either way


@pytest.mark.parametrize("suffix", COMPRESSORS)
@pytest.mark.parametrize("name", ["p.csv", "p.tsv", "p.json", "p.jsonl", "p.parquet"])
def test_a_compressed_file_under_the_cap_loads_exactly_like_the_plain_one(tmp_path, name, suffix):
    data = _as(name, CATALOG)
    plain, packed = tmp_path / name, tmp_path / (name + suffix)
    plain.write_bytes(data)
    packed.write_bytes(COMPRESSORS[suffix](data))
    expected, got = load_catalog(plain), load_catalog(packed, max_decompressed_bytes=len(data))
    assert (got.ids, got.texts, got.text_fields, got.skipped) == (expected.ids, expected.texts, expected.text_fields,
                                                                  expected.skipped)
    assert got.rows.tolist() == expected.rows.tolist()
    pd.testing.assert_frame_equal(got.payload, expected.payload)
    assert got.fingerprint() == expected.fingerprint()
    judgments = tmp_path / ("j.csv" + suffix)
    judgments.write_bytes(COMPRESSORS[suffix](JUDGMENTS.encode("utf-8")))
    assert load_judgments(judgments, got).gains.tolist() == [1.0, 0.1, 1.0]


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_errors_inside_a_compressed_file_read_as_in_the_plain_one(tmp_path, suffix):
    data = "product_id,title\n1,Mug\n2,Crème\n".encode("latin-1")
    plain, packed = tmp_path / "p.csv", tmp_path / f"p.csv{suffix}"
    plain.write_bytes(data)
    packed.write_bytes(COMPRESSORS[suffix](data))
    expected, got = error_of(load_catalog, plain), error_of(load_catalog, packed)
    assert (got.message, got.row, got.hint) == (expected.message, expected.row, expected.hint)
    assert load_catalog(packed, encoding="latin-1").texts == ["Mug", "Crème"]


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_a_corrupt_compressed_file_is_still_a_clear_error(tmp_path, suffix):
    path = tmp_path / f"p.csv{suffix}"
    path.write_bytes(COMPRESSORS[suffix](CATALOG.encode("utf-8"))[:-8])  # cut off before the end
    err = error_of(load_catalog, path)
    assert err.file == str(path) and err.hint


@pytest.mark.parametrize("suffix", COMPRESSORS)
def test_memory_stays_at_the_cap_whatever_the_bomb_expands_to(tmp_path, suffix):
    """A 256 MB bomb read with a 1 MB cap: peak Python memory stays a few MB (the codec's buffers), not 256 MB."""
    bomb = write_bomb(tmp_path / f"p.csv{suffix}", COMPRESSORS[suffix], 256)
    tracemalloc.start()
    try:
        error_of(load_catalog, bomb, max_decompressed_bytes=MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MB, f"peak {peak / MB:.1f} MB"


def test_a_parquet_file_that_decodes_past_the_cap_is_refused(tmp_path):
    """Parquet compresses inside the file: 100,000 copies of one 1 KB title are a few hundred KB on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bomb.parquet"
    rows = 100_000
    pq.write_table(pa.table({"sku": [f"id{i}" for i in range(rows)], "title": ["x" * 1000] * rows}), path,
                   compression="zstd", use_dictionary=True)
    assert path.stat().st_size < 1024**2
    with pytest.raises(SparsefitError, match="decompressed size exceeds the 20 MB limit"):
        load_catalog(path, max_decompressed_bytes=20 * 1024**2)
    assert len(load_catalog(path, max_decompressed_bytes=None)) == rows
