"""`sparsefit train --model-type minicoil` end to end: a run folder like a SPLADE run's, searched, explained
and served through the same commands; the explanation's score is the engine's score."""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES
from tests.helpers import cli_process

pytestmark = pytest.mark.slow  # trains and evaluates through the CLI in child processes


@pytest.fixture(scope="module")
def minicoil_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("mc") / "run"
    result = cli_process("train", EXAMPLES / "catalog.csv", "--judgments", EXAMPLES / "judged_queries.csv",
                         "--model-type", "minicoil", "--minicoil-min-contexts", "3", "--output", run, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return run, result.stdout + result.stderr


def test_the_run_reports_minicoil_beside_the_baselines(minicoil_run):
    run, out = minicoil_run
    report = json.loads((run / "report.json").read_text())
    names = [s["name"] for s in report["systems"]]
    assert names[:4] == ["bm25", "bm25 (Qdrant)", "base (splade-tiny)", "hybrid (base)"] and "minicoil" in names
    training = json.loads((run / "rounds/0/training.json").read_text())
    assert training["model_type"] == "minicoil" and training["words_with_layers"] > 50
    assert (run / "model" / "minicoil.json").is_file()  # the model folder is a miniCOIL one
    assert "a miniCOIL folder" in " ".join(out.split())


def test_search_and_explain_agree_with_the_engine(minicoil_run):
    run, _ = minicoil_run
    result = cli_process("search", run, "cordless drill 12v", "--limit", "5", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    top = hits[0]
    result = cli_process("explain", run, "cordless drill 12v", top["product_id"], "--json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)["models"]["minicoil"]
    words = {w["word"]: w for w in explained["shared_words"]}
    assert {"drill", "cordless"} <= set(words)
    for w in words.values():  # score = idf · tf · sense similarity, a similarity of at most 1
        assert w["score"] == pytest.approx(w["idf"] * w["tf"] * w["similarity"], rel=1e-4)
        assert -1.0 - 1e-6 <= w["similarity"] <= 1.0 + 1e-6
    assert explained["score"] == pytest.approx(top["score"], rel=1e-3)  # Qdrant's IDF modifier gives the same sum
    table = cli_process("explain", run, "cordless drill 12v", top["product_id"])
    assert table.returncode == 0 and "sense similarity" in table.stdout


def test_the_service_serves_a_minicoil_run(minicoil_run):
    from fastapi.testclient import TestClient

    from sparsefit.serving.app import create_app

    run, _ = minicoil_run
    with TestClient(create_app([run]), base_url="http://127.0.0.1") as client:
        hits = client.post("/search", json={"query": "garden hose", "limit": 3}).json()["hits"]
        assert len(hits) == 3 and all("confidence" in h for h in hits)
        explained = client.post("/explain", json={"query": "garden hose", "product_id": hits[0]["product_id"]}).json()
        assert explained["models"]["minicoil"]["shared_words"]
        assert client.post("/search", json={"query": "garden hose", "retrieval": "hybrid"}).status_code == 200


def test_evaluate_trains_one_and_index_builds_an_idf_index(minicoil_run, tmp_path):
    from sparsefit.index import open_index

    run, _ = minicoil_run
    result = cli_process("evaluate", EXAMPLES / "catalog.csv", "--judgments", EXAMPLES / "judged_queries.csv",
                         "--model-type", "minicoil", "--minicoil-min-contexts", "3", "--split", run / "split.json",
                         "--output", tmp_path / "eval", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    systems = {s["name"]: s["metrics"] for s in json.loads((tmp_path / "eval/report.json").read_text())["systems"]}
    trained = {s["name"]: s["metrics"] for s in json.loads((run / "report.json").read_text())["systems"]}
    assert set(systems) == {"bm25", "splade-tiny", "minicoil"}
    assert systems["minicoil"]["ndcg@10"] == pytest.approx(trained["minicoil"]["ndcg@10"], abs=1e-9)  # same seed, same split
    result = cli_process("index", EXAMPLES / "catalog.csv", "--model", run / "model", "--output", tmp_path / "index")
    assert result.returncode == 0, result.stderr[-2000:]
    with open_index(path=tmp_path / "index", create=False) as index:
        assert index.count() == 400 and index.modifier == "idf"


def test_a_damaged_model_is_trained_again_on_resume(minicoil_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(minicoil_run[0], run)
    before = json.loads((run / "report.json").read_text())
    layers = run / "rounds/0/model/minicoil.triplet.model.npy"
    layers.write_bytes(layers.read_bytes()[:100])  # truncated, as after a disk error
    result = cli_process("train", "--resume", run, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "damaged" in result.stdout + result.stderr and "Traceback" not in result.stderr
    after = json.loads((run / "report.json").read_text())
    got = {s["name"]: s["metrics"]["ndcg@10"] for s in after["systems"]}
    want = {s["name"]: s["metrics"]["ndcg@10"] for s in before["systems"]}
    assert got["minicoil"] == pytest.approx(want["minicoil"], abs=1e-9)  # the same model again (seeded, cached contexts)


def test_the_studio_search_explains_minicoil_words_in_a_real_browser(minicoil_run, tmp_path):
    """The studio's search tab on a miniCOIL run: each shared word's tf, idf and sense similarity (Debian's Chromium)."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    from tests.serving import test_studio_browser as browser_test

    missing = pytest.fail if os.environ.get("SPARSEFIT_REQUIRE_BROWSER") == "1" else pytest.skip
    if not browser_test.CHROMIUM.is_file():
        missing(f"{browser_test.CHROMIUM} is not installed")
    from playwright.sync_api import expect, sync_playwright

    shutil.copytree(minicoil_run[0], tmp_path / "ws" / "runs" / "mc")
    port = browser_test._free_port()
    url, log = f"http://127.0.0.1:{port}", tmp_path / "studio.log"
    env = {k: v for k, v in os.environ.items() if k not in ("SPARSEFIT_TOKEN", "HF_TOKEN")} | {"HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "sparsefit", "studio", "--workspace", str(tmp_path / "ws"), "--allow-root", str(EXAMPLES),
            "--port", str(port), "--no-open", "--token", browser_test.TOKEN]
    with open(log, "wb") as out:
        studio = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        browser_test._wait_healthy(url, studio, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(browser_test.CHROMIUM), headless=True, args=browser_test.CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{url}/studio?token={browser_test.TOKEN}#search")
                page.get_by_test_id("tab-search").click()
                page.get_by_test_id("search-run").select_option("mc")
                page.get_by_test_id("search-input").fill("cordless drill 12v")
                page.get_by_test_id("search-button").click()
                results = page.get_by_test_id("result")
                expect(results.first).to_be_visible(timeout=browser_test.SERVICE_TIMEOUT_MS)
                results.first.get_by_test_id("explain-button").click()
                column = page.get_by_test_id("explain-minicoil")
                expect(column.get_by_test_id("minicoil-word").first).to_be_visible(timeout=browser_test.SERVICE_TIMEOUT_MS)
                words = column.get_by_test_id("minicoil-word").all_text_contents()
                assert any("drill" in w for w in words) and any("cordless" in w for w in words)
                expect(column.get_by_test_id("sense-similarity").first).to_have_text(re.compile(r"^-?\d\.\d{2}$"))
            finally:
                browser.close()
    finally:
        studio.terminate()
        studio.wait(30)
