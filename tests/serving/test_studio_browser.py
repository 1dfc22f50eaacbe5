"""End to end: the studio page in a real (headless) Chromium, driving a real training run.

Starts ``sparsefit studio`` as a subprocess on a free port, then in the browser: starts a 1-round run on
the example catalog and judgments, follows it on #jobs until it has finished (loss and metric charts
drawn), compares it on #compare, searches it on #search and explains the first result.
A screenshot of every tab is saved to ``tmp_path`` and copied to /tmp/studio-shots/<tab>.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sparsefit.config import Settings

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/studio-shots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TRAINING_TIMEOUT_MS = 8 * 60 * 1000

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the studio exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200 and json.loads(response.read()).get("status") == "ok":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    pytest.fail(f"the studio did not answer /health within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


def _shot(page, tmp_path: Path, tab: str) -> None:
    target = tmp_path / f"{tab}.png"
    page.screenshot(path=str(target), full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target, SHOTS / f"{tab}.png")


def _errors(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=error-message] .text", "els => els.map(e => e.textContent)")


def _pick_file(page, select: str, suffix: str) -> None:
    values = page.eval_on_selector_all(f"[data-testid={select}] option", "os => os.map(o => o.value)")
    matches = [v for v in values if v.replace("\\", "/").endswith(suffix)]
    assert matches, f"{suffix} is not offered in {select}: {values}"
    page.get_by_test_id(select).select_option(matches[0])


def test_studio_end_to_end(tmp_path: Path) -> None:
    # CI sets SPARSEFIT_REQUIRE_BROWSER=1: there a missing browser fails the test instead of skipping it.
    missing = pytest.fail if os.environ.get("SPARSEFIT_REQUIRE_BROWSER") == "1" else pytest.skip
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is not installed (make browser installs Debian's chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("the playwright package is not installed")

    (SHOTS / "failure.png").unlink(missing_ok=True)  # no stale failure screenshot next to this run's shots
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "studio.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "sparsefit", "studio", "--workspace", str(tmp_path / "ws"), "--allow-root", str(EXAMPLES),
            "--port", str(port), "--no-open"]
    with open(log, "wb") as out:
        studio = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    try:
        _wait_healthy(url, studio, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                console: list[str] = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                try:
                    _drive(page, expect, url, tmp_path)
                except BaseException:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(tmp_path / "failure.png", SHOTS / "failure.png")
                    print("browser console:\n" + "\n".join(console))
                    print("page errors:", _errors(page))
                    raise
                assert not [c for c in console if c.startswith("pageerror")], console
                assert not [c for c in console if "Content Security Policy" in c], console  # the page lives within its CSP
            finally:
                browser.close()
    finally:
        studio.terminate()
        try:
            studio.wait(timeout=15)
        except subprocess.TimeoutExpired:
            studio.kill()
            studio.wait()
        print(f"studio log ({log}):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))


def _drive(page, expect, url: str, tmp_path: Path) -> None:
    # -- #train: pick the example files, 1 round, start -------------------------------------------------
    page.goto(f"{url}/studio#train")
    expect(page.get_by_test_id("health")).to_contain_text("ok")
    # (no wait_for_function: its string predicates are eval'd, which the studio's CSP forbids, as it should)
    expect(page.locator("[data-testid=catalog-select] option").nth(1)).to_be_attached()
    _pick_file(page, "catalog-select", "/examples/catalog.csv")
    _pick_file(page, "judgments-select", "/examples/judged_queries.csv")
    page.get_by_test_id("run-name").fill("demo")
    page.get_by_test_id("rounds").fill("1")
    # The advanced options reach the run: smaller batches and 2 epochs give ~56 steps, a denser loss curve.
    page.locator("details.advanced summary").click()
    page.get_by_test_id("opt-train_batch_size").fill("8")
    page.get_by_test_id("opt-epochs").fill("2")
    # The form starts from the server's Settings defaults; this test then trains the small splade-tiny.
    expect(page.get_by_test_id("base-model")).to_have_value(Settings.model_fields["base_model"].default)
    expect(page.get_by_test_id("opt-negatives")).to_have_attribute("placeholder", f"default {Settings.model_fields['negatives'].default}")
    page.get_by_test_id("base-model").fill("splade-tiny")
    _shot(page, tmp_path, "train")
    page.get_by_test_id("start-run").click()

    # -- #jobs: the job is selected and followed live until it has finished ------------------------------
    page.wait_for_url("**/studio#jobs/*")
    expect(page.get_by_test_id("job-title")).to_have_text("demo")
    expect(page.locator("[data-testid=job-item][data-run=demo]")).to_have_count(1)
    expect(page.get_by_test_id("job-status")).to_have_text(re.compile(r"^(finished|failed|cancelled)$"),
                                                           timeout=TRAINING_TIMEOUT_MS)
    status = page.get_by_test_id("job-status").text_content()
    assert status == "finished", f"the job ended {status}:\n" + page.get_by_test_id("job-log").text_content()
    loss_marks = page.locator("[data-testid=loss-chart] path.series, [data-testid=loss-chart] circle")
    metric_marks = page.locator("[data-testid=metric-chart] path.series, [data-testid=metric-chart] circle")
    expect(loss_marks.first).to_be_attached()
    expect(metric_marks.first).to_be_attached()
    assert loss_marks.count() > 0 and metric_marks.count() > 0
    expect(page.locator("[data-testid=metric-chart] line.ref")).to_have_count(2)  # BM25 and base
    expect(page.get_by_test_id("stage-done").filter(has_text="export")).to_have_count(1)
    expect(page.get_by_test_id("job-log")).not_to_be_empty()
    page.wait_for_timeout(300)
    _shot(page, tmp_path, "jobs")

    # -- #compare: tick the run, the table has a BM25 row with numbers -------------------------------
    page.get_by_test_id("tab-compare").click()
    box = page.locator("[data-testid=compare-run][data-run=demo]")
    expect(box).to_have_count(1)
    box.check()
    bm25 = page.locator("[data-testid=compare-table] tr[data-system=BM25]")
    expect(bm25).to_have_count(1)
    expect(bm25.locator("td").first).to_have_text(re.compile(r"^\d\.\d{3}$"))
    final = page.locator("[data-testid=compare-table] tr[data-system=final] td").first
    expect(final).to_contain_text(".")
    expect(page.locator("[data-testid=compare-chart] rect.bar")).to_have_count(3)
    _shot(page, tmp_path, "compare")

    # -- #search: "cordless drill" on the run, then explain the first result ---------------------------
    page.get_by_test_id("tab-search").click()
    expect(page.locator("[data-testid=search-run] option[value=demo]")).to_have_count(1)
    page.get_by_test_id("search-run").select_option("demo")
    page.get_by_test_id("search-input").fill("cordless drill")
    page.get_by_test_id("search-button").click()
    results = page.get_by_test_id("result")
    expect(results.nth(2)).to_be_visible(timeout=120_000)  # the first search opens the run's service
    n = results.count()
    assert n >= 3
    for i in range(n):
        expect(results.nth(i).get_by_test_id("confidence")).to_have_text(re.compile(r"^\d{1,3}%$"))
    assert "drill" in results.first.get_by_test_id("result-title").text_content().lower()
    results.first.get_by_test_id("explain-button").click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel).to_be_visible()
    for model in ("tuned", "base"):
        expect(panel.get_by_test_id(f"explain-{model}").get_by_test_id("shared-term").first).to_be_visible(timeout=120_000)
        expect(panel.get_by_test_id(f"explain-{model}").get_by_test_id("query-terms")).to_be_visible()
    assert _errors(page) == [], _errors(page)
    _shot(page, tmp_path, "search")
