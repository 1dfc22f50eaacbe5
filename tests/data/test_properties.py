"""Property tests: whatever bytes a user hands the loaders, they load or raise SparsefitError, nothing else.

Users upload catalogs and judgments from spreadsheets, exports and scripts; a traceback instead of a
one-line error is a bug. Examples are derandomized (the same on every run) and bounded, so the file
runs in seconds.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sparsefit.data import Catalog, load_catalog, load_judgments
from sparsefit.errors import SparsefitError

PROPERTY = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".csv.gz", ".jsonl.bz2", ".tsv.xz")
ENCODINGS = ("utf-8", "utf-16", "utf-16-le", "utf-16-be", "latin-1", "cp1252")
BOMS = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
# What a user may pass as --encoding: the default, the usual ones, and a few that decode oddly.
ENCODING_ARGS = (None,) * 8 + ("utf-8", "latin-1", "cp1252", "utf-16", "idna", "punycode", "unicode_escape", "rot13",
                               "no-such-codec")
NAMES = ("product_id", "sku", "id", "asin", "title", "name", "brand", "description", "query", "search_term",
         "label", "relevance", "esci_label", "price", "product_uid", "")
CATALOG_IDS = ("p1", "p2", "00123", "A-7", "1")
LABELS = ("E", "S", "C", "I", "exact", "Partial", "irrelevant", "0", "1", "2", "3", "2.5", "-1", "nan", "inf",
          "1e309", "yes", "", " ")
ODD_CELLS = ('"', '""', 'a"b', "a,b", "a;b", "a\tb", "a|b", "\n", "\r\n", "\r", "\x00", "\ufeff", "\u2028",
             "007", "-0", "1e999", "9" * 5000, "1" + "0" * 30, "true", "NaN", "\\", "{}", "[]", "null")

cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(CATALOG_IDS + LABELS),
    st.sampled_from(ODD_CELLS + NAMES),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def delimited_text(draw: st.DrawFn) -> str:
    """A table as CSV-like text: random delimiter, quoting, line ending, ragged rows.

    Half the headers name an id, a text, a query and a label column, so that many files get past
    column detection into the row, label and duplicate checks.
    """
    shaped = draw(st.booleans())
    if shaped:
        header = draw(st.permutations(["product_id", "title", "query", "label"]))
        header += draw(st.lists(st.sampled_from(NAMES) | st.text(max_size=8), max_size=2))
    else:
        header = draw(st.lists(st.sampled_from(NAMES) | st.text(max_size=8), max_size=5))
    width = len(header)
    ragged = draw(st.booleans())
    row = st.lists(cells, min_size=max(0, width - ragged), max_size=width + ragged)
    rows = draw(st.lists(row, min_size=shaped, max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if draw(st.booleans()):  # written by a CSV library, with some quoting style
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]))
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator=ending, quoting=quoting, escapechar="\\")
        try:
            writer.writerows([header, *rows])
            return out.getvalue()
        except csv.Error:  # e.g. QUOTE_NONE can't write a lone empty field: fall back to naive text
            pass
    return "".join(delimiter.join(record) + ending for record in [header, *rows])  # naive: no quoting at all


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(CATALOG_IDS + LABELS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=4), inner,
                                                               max_size=4),
    max_leaves=12,
)
json_records = st.lists(st.dictionaries(st.sampled_from(NAMES), json_values, max_size=5), max_size=5)


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """JSON or JSON Lines: records, any other JSON value, deep nesting, surrogate escapes, or cut-off text."""
    kind = draw(st.sampled_from(["list", "lines", "value", "deep", "escape", "cut"]))
    if kind == "list":
        return json.dumps(draw(json_records))
    if kind == "lines":
        return "\n".join(json.dumps(record) for record in draw(json_records))
    if kind == "value":
        return json.dumps(draw(json_values))
    if kind == "deep":
        depth = draw(st.integers(1, 100_000))
        inner = "[" * depth + "]" * depth
        return draw(st.sampled_from([inner, '{"id": "1", "title": ' + inner + "}\n", '[{"id": ' + inner + "}]"]))
    if kind == "escape":  # \\uXXXX escapes of UTF-16 surrogates, paired or not
        escapes = "".join(f"\\u{draw(st.integers(0xD800, 0xDFFF)):04x}" for _ in range(draw(st.integers(1, 3))))
        return draw(st.sampled_from(['[{"id": "1", "title": "%s"}]', '{"id": "1", "title": "a%s"}\n',
                                     '[{"id": "1", "title": "a", "%s": 1}]'])) % escapes
    text = json.dumps(draw(json_records))
    return text[: draw(st.integers(0, len(text)))]


@st.composite
def huge_field(draw: st.DrawFn) -> str:
    """A catalog or judgments file with one cell of about a megabyte (beyond csv's default field limit)."""
    size = draw(st.sampled_from([131_073, 1_000_000]))
    cell = draw(st.sampled_from(["x", "é", "9"])) * size
    return draw(st.sampled_from([
        f"product_id,title\np1,{cell}\n",
        f'product_id,title\np1,"{cell}"\n',
        f"query,product_id,label\n{cell},p1,E\n",
        json.dumps([{"product_id": "p1", "title": cell}]),
    ]))


texts = st.one_of(
    delimited_text(),
    json_text(),
    st.text(max_size=200),
    st.sampled_from(["", "\n", "product_id,title\n", "query,product_id,label\r\n", "\ufeffsku\ttitle\n", "[]", "{}"]),
)


@st.composite
def encoded(draw: st.DrawFn, text: st.SearchStrategy[str]) -> bytes:
    """Text in a random encoding, with or without a byte order mark."""
    encoding = draw(st.sampled_from(ENCODINGS))
    data = draw(text).encode(encoding, errors="replace")
    return BOMS.get(encoding, b"") + data if draw(st.booleans()) else data


def _column(n: int, values: st.SearchStrategy) -> st.SearchStrategy[list]:
    return st.lists(values, min_size=n, max_size=n)


@st.composite
def parquet_bytes(draw: st.DrawFn) -> bytes:
    """A real Parquet file with assorted column types, sometimes cut off or with a byte changed."""
    n = draw(st.integers(0, 3))
    columns = {
        draw(st.sampled_from(["product_id", "sku", "query"])): pa.array(draw(_column(n, st.sampled_from(CATALOG_IDS)))),
        draw(st.sampled_from(["title", "label", "name"])): pa.array(
            draw(_column(n, st.sampled_from(LABELS) | st.none())), pa.string()),
    }
    extra = draw(st.sampled_from(["int", "big", "float", "binary", "list", "struct", "null", "timestamp", "dict",
                                  "none"]))
    if extra == "int":
        columns[extra] = pa.array(draw(_column(n, st.integers(-(2**63), 2**63 - 1))), pa.int64())
    elif extra == "big":
        columns[extra] = pa.array(draw(_column(n, st.integers(0, 2**64 - 1))), pa.uint64())
    elif extra == "float":
        columns[extra] = pa.array(draw(_column(n, st.floats())), pa.float64())
    elif extra == "binary":
        columns[extra] = pa.array(draw(_column(n, st.binary(max_size=4))), pa.binary())
    elif extra == "list":
        columns[extra] = pa.array(draw(_column(n, st.lists(st.text(max_size=3), max_size=2))), pa.list_(pa.string()))
    elif extra == "struct":
        columns[extra] = pa.array([{"a": i} for i in range(n)], pa.struct([("a", pa.int64())]))
    elif extra == "null":
        columns[extra] = pa.nulls(n)
    elif extra == "timestamp":
        columns[extra] = pa.array(draw(_column(n, st.integers(-(2**62), 2**62))), pa.timestamp("us"))
    elif extra == "dict":
        columns[extra] = pa.array(["a"] * n).dictionary_encode()
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    data = out.getvalue()
    damage = draw(st.sampled_from(["none", "none", "cut", "flip"]))
    if damage == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    return data


contents = st.one_of(
    st.binary(max_size=300),
    texts.map(lambda t: t.encode("utf-8")),
    encoded(texts),
    huge_field().map(lambda t: t.encode("utf-8")),
    parquet_bytes(),
)

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


def write_input(folder: Path, stem: str, suffix: str, data: bytes, compress: bool) -> Path:
    """The file as a user would hand it over; a compressed suffix gets valid or raw (broken) compression."""
    path = folder / (stem + suffix)
    compressor = COMPRESS.get(Path(suffix).suffix)
    path.write_bytes(compressor(data) if compressor is not None and compress else data)
    return path


def assert_clear(err: SparsefitError, path: Path) -> None:
    """A user-facing error: one line that names the file and says how to fix it."""
    text = str(err)
    event(f"error: {err.message[:30]}")  # with --hypothesis-show-statistics: which checks the inputs reach
    assert "\n" not in text and path.name in text and " Fix: " in text, text


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@pytest.fixture(scope="module")
def catalog(folder: Path) -> Catalog:
    path = folder / "catalog.csv"
    path.write_text("product_id,title\n" + "".join(f"{pid},Product {pid}\n" for pid in CATALOG_IDS), encoding="utf-8")
    return load_catalog(path)


@PROPERTY
@given(data=contents, suffix=st.sampled_from(SUFFIXES), compress=st.booleans(),
       encoding=st.sampled_from(ENCODING_ARGS), skip=st.booleans(), cap=st.none() | st.integers(0, 4096))
def test_load_catalog_loads_or_raises_sparsefit_error(folder, data, suffix, compress, encoding, skip, cap):
    """Any bytes under any supported name (compressed or not, any cap): a usable catalog or a clear error."""
    path = write_input(folder, "products", suffix, data, compress)
    try:
        catalog = load_catalog(path, encoding=encoding, on_invalid="skip" if skip else "error",
                               max_decompressed_bytes=cap)
    except SparsefitError as err:
        assert_clear(err, path)
        return
    event("loaded")
    assert len(catalog) > 0 and len(catalog.ids) == len(catalog.texts) == len(catalog.payload)
    catalog.fingerprint()  # ids and texts are real text: they encode as UTF-8
    json.dumps([catalog.payload_of(i) for i in range(len(catalog))])


@PROPERTY
@given(data=contents, suffix=st.sampled_from(SUFFIXES), compress=st.booleans(),
       encoding=st.sampled_from(ENCODING_ARGS), with_catalog=st.booleans(), skip=st.booleans())
def test_load_judgments_loads_or_raises_sparsefit_error(folder, catalog, data, suffix, compress, encoding,
                                                         with_catalog, skip):
    """Any bytes as a judgments file, with or without a catalog: usable judgments or a clear error."""
    path = write_input(folder, "judgments", suffix, data, compress)
    try:
        judgments = load_judgments(path, catalog if with_catalog else None, encoding=encoding,
                                   on_invalid="skip" if skip else "error")
    except SparsefitError as err:
        assert_clear(err, path)
        return
    event("loaded")
    assert len(judgments) > 0 and len(judgments.gains) == len(judgments.product_ids)
    judgments.qrels()


SCHEMES = [("E", "S", "C", "I"), ("Exact", "partial", "Irrelevant"), ("0", "1"), ("yes", "no"), ("1", "2", "3", "2.33"),
           ("0", "1", "2", "3"), ("0.5", "1.5")]


@st.composite
def judgment_rows(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Rows mostly in one label scheme and for catalog products; some files mix in odd labels, ids, queries."""
    odd = draw(st.booleans())
    label = st.sampled_from(draw(st.sampled_from(SCHEMES)))
    query = st.sampled_from(["red mug", "Red  Mug", "lamp", "LAMP "])
    pid = st.sampled_from(CATALOG_IDS)
    if odd:
        label, query, pid = label | cells, query | st.sampled_from([" ", ""]) | st.text(max_size=6), pid | cells
    return draw(st.lists(st.tuples(query, pid, label), min_size=1, max_size=8))


@PROPERTY
@given(rows=judgment_rows(), header=st.sampled_from(["query,product_id,label", "search_term,product_uid,relevance",
                                                     "query,sku,esci_label", "q,id,grade"]),
       conflict=st.sampled_from(["mean", "first", "error"]), unknown=st.sampled_from(["drop", "error"]))
def test_well_formed_judgment_files_with_random_labels(folder, catalog, rows, header, conflict, unknown):
    """Valid CSV, so the label scheme, duplicate and unknown-product logic get exercised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header.split(","))
    writer.writerows(rows)
    path = folder / "labels.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    try:
        judgments = load_judgments(path, catalog, on_conflict=conflict, on_unknown_product=unknown)
    except SparsefitError as err:
        assert_clear(err, path)
        return
    event("loaded")
    assert judgments.relevant().any()


@PROPERTY
@given(before=st.text(alphabet="ab,;\t\"\n\r é€", max_size=40),
       bad=st.sampled_from([b"\xff", b"\xfe", b"\x80", b"\xe8", b"\xc3("]),
       after=st.text(alphabet="ab,\n", max_size=10), bom=st.booleans())
def test_an_invalid_utf8_byte_is_reported_at_its_own_offset_and_line(folder, before, bad, after, bom):
    """The byte, offset and line in the message are the file's own, with or without a UTF-8 BOM."""
    head = (codecs.BOM_UTF8 if bom else b"") + before.encode("utf-8")
    path = folder / "bytes.csv"
    path.write_bytes(head + bad + after.encode("utf-8"))
    with pytest.raises(SparsefitError) as caught:
        load_catalog(path)
    assert f"byte 0x{bad[0]:02x} at byte offset {len(head)} is not valid UTF-8" in str(caught.value)
    assert caught.value.row == head.count(b"\n") + 1


# Payload columns, each of one kind (type inference looks at the whole column): numbers of every size
# a spreadsheet can hold, as text, floats, booleans, or anything at all.
column_kinds = st.sampled_from([
    st.integers().map(str) | st.sampled_from([19, 20, 21, 4300, 4301, 5000]).map(lambda n: "9" * n) | st.just(""),
    st.floats().map(repr) | st.sampled_from(["1e999", "-1e999", "1e-999", "-0", ".5", "5."]),
    st.sampled_from(["true", "False", "TRUE", "", " "]),
    cells,
])


@PROPERTY
@given(ids=st.lists(st.sampled_from(CATALOG_IDS) | st.text(min_size=1, max_size=5), min_size=1, max_size=6,
                    unique_by=str.strip),
       extra=column_kinds.flatmap(lambda kind: st.lists(kind, min_size=6, max_size=6)),
       suffix=st.sampled_from([".csv", ".jsonl", ".parquet"]), skip=st.booleans())
def test_well_formed_catalogs_with_random_payload_values(folder, ids, extra, suffix, skip):
    """Valid files whose payload column holds anything (numbers of every size, NaN, bools, blanks): the
    type inference and payload export never crash, and loaded ids are the file's ids, stripped."""
    rows = [{"product_id": pid, "title": f"Product {i}", "extra": extra[i]} for i, pid in enumerate(ids)]
    path = folder / f"shaped{suffix}"
    if suffix == ".csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["product_id", "title", "extra"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(out.getvalue(), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    try:
        catalog = load_catalog(path, on_invalid="skip" if skip else "error")
    except SparsefitError as err:
        assert_clear(err, path)
        return
    event("loaded")
    assert set(catalog.ids) <= {pid.strip() for pid in ids}
    assert json.loads(json.dumps([catalog.payload_of(i) for i in range(len(catalog))], allow_nan=False))
