"""``sparsefit index``: a catalog indexed a chunk at a time equals the whole catalog indexed at once, an
interrupted run goes on where it stopped, another model starts over, and bad input is one line, exit 2."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from sparsefit.bulk import PROGRESS_KEY, SeenIds, id_hashes, stream_index
from sparsefit.data import load_catalog
from sparsefit.index import Bm25Model, IndexLocation
from sparsefit.index.edge import META_FILE
from sparsefit.indexing import build_index, payload_fingerprint
from tests.conftest import EXAMPLES
from tests.helpers import CLI, run_cli

CATALOG = EXAMPLES / "catalog.csv"


def queries(n: int = 25) -> list[str]:
    with (EXAMPLES / "judged_queries.csv").open(encoding="utf-8") as handle:
        return list(dict.fromkeys(row["query"] for row in csv.DictReader(handle)))[:n]


def results(index, encoder, limit: int = 20) -> list[list[tuple[str, float, dict]]]:
    vectors = encoder.encode_queries(queries())
    return [[(h.product_id, h.score, h.payload) for h in index.search(vectors[i], limit=limit)]
            for i in range(vectors.shape[0])]


def assert_same_results(got, want) -> None:
    assert len(got) == len(want)
    for mine, theirs in zip(got, want):
        assert [pid for pid, _, _ in mine] == [pid for pid, _, _ in theirs]
        assert all(abs(a - b) <= 1e-5 for (_, a, _), (_, b, _) in zip(mine, theirs))
        assert [payload for _, _, payload in mine] == [payload for _, _, payload in theirs]


def write_jsonl(path: Path) -> Path:
    """The demo catalog as JSON Lines with typed values (numbers, booleans), as a shop would export it."""
    catalog = load_catalog(CATALOG)
    path.write_text("".join(json.dumps(p) + "\n" for p in catalog.payloads()), encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    load_catalog(CATALOG).payload.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def whole(splade_tiny_reused, tmp_path_factory):
    """``build_index`` on the whole catalog of each format: what the chunked index must equal."""
    out = {}
    folder = tmp_path_factory.mktemp("whole")
    sources = {"csv": CATALOG, "jsonl": write_jsonl(folder / "catalog.jsonl"),
               "parquet": write_parquet(folder / "catalog.parquet")}
    for name, source in sources.items():
        index, _ = build_index(splade_tiny_reused, load_catalog(source), IndexLocation(path=folder / name),
                               show_progress=False)
        out[name] = (source, results(index, splade_tiny_reused))
        index.close()
    return out


def one_error_line(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("Indexing ", "indexing "))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- the command equals the whole-catalog index -------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_command_indexes_every_format_like_build_index(capsys, tmp_path, splade_tiny_reused, whole, fmt):
    source, want = whole[fmt]
    folder = tmp_path / "index"
    code, _, err = run_cli(capsys, "index", source, "--model", "splade-tiny", "--output", folder, "--chunk-size", "64")
    assert code == 0, err
    assert "Indexed 400 products" in err and "products/s" in err
    index = IndexLocation(path=folder).open(create=False)
    try:
        assert index.count() == 400
        assert_same_results(results(index, splade_tiny_reused), want)
        meta = index.get_metadata()
        catalog = load_catalog(source)
        assert meta["complete"] is True and meta["model"] == splade_tiny_reused.fingerprint()
        assert meta["payload_keys"] == sorted(catalog.payload.columns)
        assert meta["catalog"] == catalog.fingerprint()  # chunk by chunk, the whole file's fingerprints
        assert meta["payload"] == payload_fingerprint(catalog)
        assert PROGRESS_KEY not in meta
    finally:
        index.close()
    # the same command again: nothing to do
    code, _, err = run_cli(capsys, "index", source, "--model", "splade-tiny", "--output", folder, "--chunk-size", "64")
    assert code == 0 and "nothing to do" in err


def test_a_run_indexed_by_the_command_serves_the_same_hits(capsys, tmp_path, splade_tiny_reused, whole):
    """``--model RUN`` takes the run's exported model; into RUN/index, ``SearchService`` (serve, search) takes it."""
    from sparsefit.config import load_settings, save_settings
    from sparsefit.files import write_json
    from sparsefit.serving.service import SearchService

    run = tmp_path / "run"
    splade_tiny_reused.save(run / "model")
    save_settings(load_settings(), run / "config.yaml")
    write_json(run / "state.json", {"done": ["export"]})
    code, _, err = run_cli(capsys, "index", CATALOG, "--model", run, "--output", run / "index", "--chunk-size", "100")
    assert code == 0, err
    assert f"Serve it: sparsefit serve {run}" in err
    service = SearchService.open(run, calibrate=False)
    try:
        for query, want in zip(queries(), whole["csv"][1]):
            hits = service.search(query, limit=20)["hits"]
            assert [h["product_id"] for h in hits] == [pid for pid, _, _ in want]
            # the service rounds scores to 4 decimals: within half of that (plus 1e-5) of the whole index's
            assert all(abs(h["score"] - score) <= 5e-5 + 1e-5 for h, (_, score, _) in zip(hits, want))
    finally:
        service.close()


# -- resuming -----------------------------------------------------------------------------------
class Crash(Exception):
    pass


def crash_after(chunk: int):
    def hook(number: int, products: int) -> None:
        if number == chunk:
            raise Crash(f"killed after chunk {number} ({products} products)")
    return hook


def test_a_crash_halfway_then_the_same_call_finishes_the_index(tmp_path, splade_tiny_reused, whole):
    location = IndexLocation(path=tmp_path / "index")
    with pytest.raises(Crash):
        stream_index(splade_tiny_reused, CATALOG, location, chunk_size=100, show_progress=False,
                     after_chunk=crash_after(1))
    meta = json.loads((tmp_path / "index" / META_FILE).read_text())
    assert meta["complete"] is False and meta[PROGRESS_KEY]["rows"] == 200 and meta[PROGRESS_KEY]["products"] == 200
    bm25_before = meta[PROGRESS_KEY]["bm25"]  # Qdrant's BM25 with the first chunk's average length
    assert bm25_before["avg_len"] > 1
    lines, chunks = [], []
    report = stream_index(splade_tiny_reused, CATALOG, location, chunk_size=100, show_progress=False,
                          notify=lines.append, after_chunk=lambda n, p: chunks.append(n))
    assert chunks == [2, 3]  # the first two chunks were not encoded again
    assert report.resumed_products == 200 and report.products == 400 and report.started_over is None
    assert any(line.startswith("Resuming: 200 products (200 rows)") for line in lines), lines
    with location.open(create=False) as index:
        assert index.count() == 400  # exactly the catalog: no point twice
        assert_same_results(results(index, splade_tiny_reused), whole["csv"][1])
        assert index.get_metadata()["complete"] is True
        # the resumed chunks' BM25 vectors used the same model as the first ones, and BM25 search finds drills
        assert index.has_bm25 and index.get_metadata()["bm25"] == bm25_before
        hits = index.search(None, bm25=Bm25Model.from_json(bm25_before).queries(["cordless drill"]), limit=5)
        assert len(hits) == 5 and all("Drill" in h.payload["title"] for h in hits)


def test_a_chunk_upserted_in_part_before_the_crash_is_written_again_harmlessly(tmp_path, splade_tiny_reused, whole):
    """Killed after chunk 1's upsert but before its progress was recorded: the rerun redoes chunk 1."""
    from sparsefit import bulk

    location = IndexLocation(path=tmp_path / "index")
    real = bulk._Build._store  # runs on the storing thread, beside the encoding of the next chunk
    calls = []

    def store_then_die(self, part, vectors, rows, products, after):
        if len(calls) == 1:  # chunk 1: upsert it, then die before recording it
            self.index.upsert(part.ids, vectors, part.payloads())
            raise Crash("killed between the upsert and the progress record")
        calls.append(rows)
        real(self, part, vectors, rows, products, after)

    bulk._Build._store = store_then_die
    try:
        with pytest.raises(Crash):
            stream_index(splade_tiny_reused, CATALOG, location, chunk_size=150, show_progress=False)
    finally:
        bulk._Build._store = real
    with location.open(create=False) as index:
        assert index.count() == 300 and index.get_metadata()[PROGRESS_KEY]["rows"] == 150
    report = stream_index(splade_tiny_reused, CATALOG, location, chunk_size=150, show_progress=False)
    assert report.resumed_products == 150 and report.products == 400
    with location.open(create=False) as index:
        assert index.count() == 400
        assert_same_results(results(index, splade_tiny_reused), whole["csv"][1])


def test_another_model_or_catalog_starts_over_and_says_why(tmp_path, splade_tiny_reused, tiny_model):
    from sparsefit.models import load_encoder

    location = IndexLocation(path=tmp_path / "index")
    with pytest.raises(Crash):
        stream_index(splade_tiny_reused, CATALOG, location, chunk_size=100, show_progress=False,
                     after_chunk=crash_after(0))
    lines, chunks = [], []
    other = load_encoder(str(tiny_model))
    report = stream_index(other, CATALOG, location, chunk_size=100, show_progress=False, notify=lines.append,
                          after_chunk=lambda n, p: chunks.append(n))
    assert "another model" in report.started_over and report.resumed_products == 0 and chunks == [0, 1, 2, 3]
    assert any("starting over" in line for line in lines)
    with location.open(create=False) as index:
        assert index.count() == 400 and index.get_metadata()["model"] == other.fingerprint()
    # a complete index, then the catalog changes: starts over too
    edited = tmp_path / "catalog.csv"
    edited.write_text(CATALOG.read_text(encoding="utf-8").replace("Cordless", "Corded", 1), encoding="utf-8")
    stream_index(other, edited, location, chunk_size=100, show_progress=False)
    edited.write_text(edited.read_text(encoding="utf-8").replace("Corded", "Cordless", 1), encoding="utf-8")
    report = stream_index(other, edited, location, chunk_size=100, show_progress=False)
    assert "as it was before it changed" in report.started_over and report.products == 400


def test_a_catalog_that_cannot_be_read_leaves_the_index_there_as_it_was(capsys, tmp_path, splade_tiny_reused):
    folder = tmp_path / "index"
    stream_index(splade_tiny_reused, CATALOG, IndexLocation(path=folder), chunk_size=200, show_progress=False)
    wrong = tmp_path / "other.csv"
    wrong.write_text("name,colour\nmug,red\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "index", wrong, "-m", "splade-tiny", "-o", folder)
    one_error_line(code, err, "no id column found")
    with IndexLocation(path=folder).open(create=False) as index:
        assert index.count() == 400 and index.get_metadata()["complete"] is True


def test_the_command_says_when_it_resumes_and_when_it_starts_over(capsys, tmp_path, splade_tiny_reused):
    folder = tmp_path / "index"
    with pytest.raises(Crash):
        stream_index(splade_tiny_reused, CATALOG, IndexLocation(path=folder), chunk_size=100, show_progress=False,
                     after_chunk=crash_after(0))
    code, _, err = run_cli(capsys, "index", CATALOG, "-m", "splade-tiny", "-o", folder, "--chunk-size", "200")
    assert code == 0, err
    assert "Going on in chunks of 100 rows" in err and "Resuming: 100 products" in err
    assert "Indexed 400 products (100 of them before this run)" in err


# -- bad input: one line, exit 2 ----------------------------------------------------------------
def test_an_id_repeated_in_a_later_chunk_is_one_line_naming_both_rows(capsys, tmp_path):
    text = CATALOG.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    repeated = tmp_path / "catalog.csv"
    repeated.write_text(text + lines[6], encoding="utf-8")  # row 402 repeats row 7 (chunk 0) in chunk 4
    sku = lines[6].split(",")[0]
    code, _, err = run_cli(capsys, "index", repeated, "-m", "splade-tiny", "-o", tmp_path / "index", "--chunk-size", "100")
    one_error_line(code, err, f"{repeated}, row 402, column \"sku\"", f"row 402 repeats id '{sku}' from row 7",
                   "--on-invalid skip")
    code, _, err = run_cli(capsys, "index", repeated, "-m", "splade-tiny", "-o", tmp_path / "index", "--chunk-size", "100",
                           "--on-invalid", "skip")
    assert code == 0, err
    assert "Indexed 400 products" in err and "'duplicate id': 1" in err and "starting over" in err


def test_a_bad_row_in_a_later_chunk_is_the_usual_one_line(capsys, tmp_path):
    bad = tmp_path / "catalog.csv"
    bad.write_text(CATALOG.read_text(encoding="utf-8") + ",Nameless product,Acme,Tools,,1,true\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "index", bad, "-m", "splade-tiny", "-o", tmp_path / "index", "--chunk-size", "100")
    one_error_line(code, err, f"{bad}, row 402, column \"sku\": product id is blank", "--on-invalid skip")


@pytest.mark.parametrize("state, fragment", [
    ({"done": ["inputs", "round-0/train"]}, "the run has not finished exporting its model"),
    (None, "the run has not finished exporting its model"),
])
def test_model_from_a_run_that_has_not_exported_is_refused(capsys, tmp_path, state, fragment):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("rounds: 1\n")
    if state is not None:
        (run / "state.json").write_text(json.dumps(state))
    code, _, err = run_cli(capsys, "index", CATALOG, "--model", run, "--output", tmp_path / "index")
    one_error_line(code, err, str(run), fragment, f"sparsefit train --resume {run}")
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("extra, fragments", [
    ([], ["say where the index goes", "not neither"]),
    (["-o", "x", "--qdrant-url", "http://127.0.0.1:9"], ["not both"]),
    (["-o", "x", "--chunk-size", "0"], ["Invalid value for '--chunk-size'"]),
])
def test_where_and_how_much_are_checked_first(capsys, tmp_path, monkeypatch, extra, fragments):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "index", CATALOG, "-m", "splade-tiny", *extra)
    one_error_line(code, err, *fragments)


def test_a_json_list_is_refused_with_the_way_to_json_lines(capsys, tmp_path):
    listed = tmp_path / "catalog.json"
    listed.write_text(json.dumps(load_catalog(CATALOG).payloads()[:3]), encoding="utf-8")
    code, _, err = run_cli(capsys, "index", listed, "-m", "splade-tiny", "-o", tmp_path / "index")
    one_error_line(code, err, "a JSON list can only be read whole", "jq -c '.[]'", "catalog.jsonl")


# -- pieces -------------------------------------------------------------------------------------
def test_seen_ids_find_every_earlier_id_and_only_those():
    seen = SeenIds()
    ids = [f"SKU-{i}" for i in range(5000)]
    for start in range(0, 5000, 37):
        chunk = id_hashes(ids[start:start + 37])
        assert not seen.contains(chunk).any()
        seen.add(chunk)
    assert seen.contains(id_hashes(ids)).all() and not seen.contains(id_hashes(["SKU-5000", "sku-1"])).any()
    assert len(seen) == 5000 and len(seen._levels) <= 12


def test_payloads_in_one_pass_equal_payload_of_each_row(tmp_path):
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"id": "1", "title": "Mug", "tags": ["a", "b"], "dims": {"h": 2}, "price": 3.5}\n'
                      '{"id": "2", "title": "Cup", "price": null, "stock": true}\n', encoding="utf-8")
    for source in (CATALOG, nested):
        catalog = load_catalog(source)
        assert catalog.payloads() == [catalog.payload_of(i) for i in range(len(catalog))]


@pytest.mark.slow  # a child process killed while it indexes
def test_the_command_killed_halfway_goes_on_when_run_again(tmp_path):
    folder = tmp_path / "index"
    big = tmp_path / "catalog.csv"
    frame = pd.read_csv(CATALOG, dtype=str, keep_default_na=False)
    copies = [frame.assign(sku=frame["sku"] + f"-{k}") for k in range(3)]
    pd.concat(copies).to_csv(big, index=False)  # 1,200 products
    argv = [*CLI, "index", str(big), "-m", "splade-tiny", "-o", str(folder), "--chunk-size", "100"]
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.poll() is None:
        try:
            done = json.loads((folder / META_FILE).read_text())[PROGRESS_KEY]["products"]
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 200:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    child.wait(60)
    assert child.returncode == -signal.SIGKILL, "the child finished before it could be killed"
    again = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Resuming:" in again.stderr and "Indexed 1,200 products" in again.stderr
    with IndexLocation(path=folder).open(create=False) as index:
        assert index.count() == 1200 and index.get_metadata()["complete"] is True
