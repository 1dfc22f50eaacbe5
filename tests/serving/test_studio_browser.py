"""End to end: the studio page in a real (headless) Chromium, driving a real training run.

Starts ``sparsefit studio --token …`` as a subprocess on a free port and opens the page from its ?token= link
(the later requests, the page's ES modules included, carry the token in the cookie the server sets). Then
every tab in turn:

- #settings: saves a default for new runs, the LLM endpoint and its key; after a reload the values are there and
  the key shows only as set (browser_pages.py drives this page and the four after #search);
- #train: the saved default and the LLM options show in the form; picks the example catalog and judgments,
  1 round and small batches, starts the run;
- #jobs: follows the job live until it has finished (stages, progress, loss and nDCG@10 charts, the systems
  table, the log; a reload of #jobs/<id> selects the job again);
- #compare: ticks the run: table rows and bars for BM25, base and tuned, unticks and ticks it again;
- #search: a search with confidence per hit and paging, the explanation of the first hit; the retrieval
  picker (BM25 and hybrid give what POST /search gives them), feedback thumbs and "Re-search with feedback"
  (the API's ranking for the same marks, kept while paging), a boost from the builder (the API's ranking for
  it) and boosts refused by the builder and by the server; a filtered search (the builder's filter reaches the
  results, confidence is left out), the exclusion rules box, and two error paths: a filter the builder
  refuses and one the server refuses, each shown as one line;
- #evaluate: the run and the base model on the run's held-out queries, in the background; the page's table is
  the one the CLI printed;
- #collections: the run's and the evaluation's indexes with their point counts; one deleted once its name is
  typed again;
- #publish: the run to a local fake hub (tests/fake_hub.py): its files arrive, the token is in no file of the
  workspace, no answer and not in the page; then its .tar.gz, downloaded;
- #jobs: a second run cancelled once its inputs are loaded, resumed with the Resume button, finished.

Every module script is served as JavaScript, no script error and no CSP violation reach the console. A
screenshot of every tab is saved to ``tmp_path`` and copied to /tmp/studio-shots/<tab>.png.
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
from tests.fake_hub import fake_hub
from tests.serving import browser_pages as pages

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
STATIC = REPO / "src" / "sparsefit" / "serving" / "static"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/studio-shots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TRAINING_TIMEOUT_MS = 8 * 60 * 1000
SERVICE_TIMEOUT_MS = 120_000  # the first search or explanation of a run loads its models
TOKEN = pages.TOKEN
JS_TYPES = ("text/javascript", "application/javascript")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/health", headers={"Authorization": f"Bearer {TOKEN}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the studio exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
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
    """The messages in the page's red error area."""
    return page.get_by_test_id("error-message").locator(".text").all_text_contents()


def _api_search(url: str, **body) -> dict:
    """POST /search from here (not through the page): what the studio's results must equal."""
    request = urllib.request.Request(f"{url}/search", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _ids(data: dict) -> list[str]:
    return [hit["product_id"] for hit in data["hits"]]


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
    for name in ("SPARSEFIT_TOKEN", "HF_TOKEN", "SPARSEFIT_LLM_API_KEY"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "sparsefit", "studio", "--workspace", str(tmp_path / "ws"), "--allow-root", str(EXAMPLES),
            "--port", str(port), "--no-open", "--token", TOKEN]
    with open(log, "wb") as out:
        studio = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    try:
        _wait_healthy(url, studio, log)
        with sync_playwright() as p, fake_hub(pages.HUB_TOKEN) as hub:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                console: list[str] = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                scripts: dict[str, str] = {}  # static script name -> the Content-Type of its first load (not a cached reload)
                page.on("response", lambda r: scripts.setdefault(r.url.rsplit("/", 1)[-1], r.headers.get("content-type", ""))
                        if "/studio/static/" in r.url and r.url.endswith(".js") and r.status == 200 else None)
                try:
                    _drive(page, expect, url, tmp_path, hub)
                except BaseException:
                    page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(tmp_path / "failure.png", SHOTS / "failure.png")
                    print("browser console:\n" + "\n".join(console))
                    print("page errors:", _errors(page))
                    raise
                assert not [c for c in console if c.startswith("pageerror")], console
                assert not [c for c in console if "Content Security Policy" in c], console  # the page lives within its CSP
                # Module scripts need a JavaScript MIME type; every module in static/ is part of the page.
                assert sorted(scripts) == sorted(f.name for f in STATIC.glob("*.js")), scripts
                assert all(kind.split(";")[0].strip() in JS_TYPES for kind in scripts.values()), scripts
            finally:
                browser.close()
            assert hub.unhandled == []  # huggingface_hub asked the fake for nothing it does not know
        for secret in (pages.HUB_TOKEN, pages.LLM_KEY):
            assert secret not in log.read_text(errors="replace"), "a secret reached the studio's output"
    finally:
        pages.stop_jobs(tmp_path / "ws")
        studio.terminate()
        try:
            studio.wait(timeout=15)
        except subprocess.TimeoutExpired:
            studio.kill()
            studio.wait()
        print(f"studio log ({log}):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]))


def _drive(page, expect, url: str, tmp_path: Path, hub) -> None:
    workspace = tmp_path / "ws"

    def shot(page, name: str) -> None:
        _shot(page, tmp_path, name)

    page.goto(f"{url}/studio?token={TOKEN}#train")  # the server answers with the token's cookie
    expect(page.get_by_test_id("health")).to_contain_text("ok")
    pages.settings(page, expect, url, workspace, shot)
    job_id = _train(page, expect, url, tmp_path)
    _jobs(page, expect, job_id, tmp_path)
    _compare(page, expect, tmp_path)
    _search(page, expect, url, tmp_path)
    doomed = pages.evaluate(page, expect, url, workspace, shot)
    pages.collections(page, expect, url, workspace, doomed, shot)
    pages.publish(page, expect, url, workspace, hub, tmp_path, shot)
    pages.resume(page, expect, shot)


def _train(page, expect, url: str, tmp_path: Path) -> str:
    """#train: the saved defaults and the LLM options are in the form; pick the example files, 1 round, start;
    returns the job's id."""
    page.get_by_test_id("tab-train").click()
    expect(page.get_by_test_id("tab-train")).to_have_class(re.compile(r"\bactive\b"))
    # (no wait_for_function: its string predicates are eval'd, which the studio's CSP forbids, as it should)
    expect(page.locator("[data-testid=catalog-select] option").nth(1)).to_be_attached()
    pages.pick_file(page, "catalog-select", "/examples/catalog.csv")
    pages.pick_file(page, "judgments-select", "/examples/judged_queries.csv")
    page.get_by_test_id("run-name").fill("demo")
    page.get_by_test_id("rounds").fill("1")
    # The advanced options reach the run: smaller batches and 2 epochs give ~56 steps, a denser loss curve.
    page.locator("details.advanced summary").click()
    page.get_by_test_id("opt-train_batch_size").fill("8")
    page.get_by_test_id("opt-epochs").fill("2")
    page.get_by_test_id("opt-learning_rate").fill("0.0002")  # Settings' default, given explicitly
    page.get_by_test_id("opt-architecture").select_option("splade")
    # The form starts from the defaults: the studio's saved ones (#settings), else sparsefit's Settings; this test
    # then trains the small splade-tiny. The LLM options stand for the saved endpoint (used without judgments).
    expect(page.get_by_test_id("base-model")).to_have_value(Settings.model_fields["base_model"].default)
    expect(page.get_by_test_id("opt-negatives")).to_have_attribute("placeholder", "default 3")
    expect(page.get_by_test_id("opt-epochs")).to_have_attribute("placeholder", f"default {Settings.model_fields['epochs'].default:g}")  # JavaScript writes 1.0 as 1
    expect(page.get_by_test_id("opt-llm_url")).to_be_visible()
    expect(page.get_by_test_id("opt-llm_url")).to_have_attribute("placeholder", "default http://127.0.0.1:9/v1")
    expect(page.get_by_test_id("opt-llm_model")).to_have_attribute("placeholder", "default llama3.1:8b")
    page.get_by_test_id("base-model").fill("splade-tiny")
    _shot(page, tmp_path, "train")
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"/studio(\?[^#]*)?#jobs/[^/]+$"))
    return page.url.rsplit("#jobs/", 1)[1]


def _jobs(page, expect, job_id: str, tmp_path: Path) -> None:
    """#jobs: the job is selected and followed live until it has finished; a reload of #jobs/<id> shows it again."""
    expect(page.get_by_test_id("tab-jobs")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.get_by_test_id("job-title")).to_have_text("demo")
    item = page.locator(f"[data-testid=job-item][data-run=demo][data-job-id='{job_id}']")
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("job-status")).to_have_text(re.compile(r"^(finished|failed|cancelled)$"),
                                                           timeout=TRAINING_TIMEOUT_MS)
    status = page.get_by_test_id("job-status").text_content()
    assert status == "finished", f"the job ended {status}:\n" + page.get_by_test_id("job-log").text_content()

    page.reload()  # the route #jobs/<id> alone selects the job
    expect(page.get_by_test_id("job-title")).to_have_text("demo")
    expect(page.get_by_test_id("job-status")).to_have_text("finished")
    expect(item.get_by_test_id("job-badge")).to_have_text("finished")
    expect(item).to_have_class(re.compile(r"\bselected\b"))
    expect(page.get_by_test_id("running-count")).to_be_hidden()
    expect(page.get_by_test_id("cancel-job")).to_be_hidden()
    expect(page.get_by_test_id("progress-label")).to_have_text("finished")
    expect(page.get_by_test_id("progress-pct")).to_have_text("100%")
    for stage in ("inputs", "baselines", "round-0/train", "round-0/evaluate", "export"):
        expect(page.get_by_test_id("stage-done").filter(has_text=stage)).to_have_count(1)
    expect(page.get_by_test_id("stage-pending")).to_have_count(0)
    # the charts: a loss curve, the tuned point of round 0 between the BM25 and base reference lines
    loss_marks = page.locator("[data-testid=loss-chart] path.series, [data-testid=loss-chart] circle")
    expect(loss_marks.first).to_be_attached()
    expect(page.locator("[data-testid=loss-chart] path.series")).to_have_count(1)
    expect(page.locator("#loss-legend")).to_have_text("round 0")
    expect(page.locator("[data-testid=metric-chart] path.series")).to_have_count(1)
    expect(page.locator("[data-testid=metric-chart] circle.pt")).to_have_count(1)  # one round, one point
    expect(page.locator("[data-testid=metric-chart] line.ref")).to_have_count(2)  # BM25 and base
    expect(page.get_by_test_id("metric-chart")).to_contain_text("round 0")
    # the systems table: bm25 first, the base model and round 0 after it, with numbers (the run may add systems
    # such as Qdrant's BM25 and the hybrids); round 0 is the final one
    rows = page.get_by_test_id("system-row")
    expect(page.locator("[data-testid=system-row][data-system='round 0']")).to_have_count(1)
    systems = [rows.nth(i).get_attribute("data-system") for i in range(rows.count())]
    assert systems[0] == "bm25", systems
    assert [x for x in systems if x in ("bm25", "base (splade-tiny)", "round 0")] == ["bm25", "base (splade-tiny)", "round 0"], systems
    for system in ("bm25", "base (splade-tiny)", "round 0"):
        row = page.locator(f"[data-testid=system-row][data-system='{system}']")
        expect(row.locator("td.num")).to_have_count(6)  # five metrics and the ratio to BM25
        expect(row.locator("td.num").first).to_have_text(re.compile(r"^\d\.\d{3}$"))
    expect(rows.nth(0).locator("td.num").last).to_have_text("×1.000")
    expect(page.locator("[data-testid=system-row].final")).to_have_attribute("data-system", "round 0")
    expect(page.locator("[data-testid=system-row].final")).to_contain_text("final")
    expect(page.get_by_test_id("job-log")).not_to_be_empty()
    expect(page.get_by_test_id("job-log")).not_to_have_text("(no output yet)")
    _shot(page, tmp_path, "jobs")


def _compare(page, expect, tmp_path: Path) -> None:
    """#compare: tick the run; BM25, base, round 0 and final rows with numbers, three bars; untick, tick again."""
    page.get_by_test_id("tab-compare").click()
    expect(page.get_by_test_id("tab-compare")).to_have_class(re.compile(r"\bactive\b"))
    box = page.locator("[data-testid=compare-run][data-run=demo]")
    expect(box).to_have_count(1)
    table = page.get_by_test_id("compare-table")
    chart = page.get_by_test_id("compare-chart")
    expect(table).to_contain_text("Tick one or more runs")
    expect(chart).to_contain_text("Tick one or more runs")
    box.check()
    expect(table.locator("thead tr.group")).to_contain_text("demo")
    for system in ("BM25", "base", "round 0", "final"):
        cells = table.locator(f"tr[data-system='{system}'] td")
        expect(cells).to_have_count(3)  # nDCG@10, MRR@10, R@100
        for i in range(3):
            expect(cells.nth(i)).to_have_text(re.compile(r"^\d\.\d{3}"))
    expect(table.locator("tr[data-system=final] .delta")).to_have_text(re.compile(r"^[+−±]\d\.\d{3}$"))  # vs BM25
    for bar in ("BM25", "base", "tuned (final)"):
        expect(chart.locator(f"rect.bar[data-name='{bar}']")).to_have_count(1)
    expect(chart.locator("rect.bar")).to_have_count(3)
    expect(chart).to_contain_text("demo")
    box.uncheck()
    expect(chart.locator("rect.bar")).to_have_count(0)
    expect(table).to_contain_text("Tick one or more runs")
    box.check()
    expect(chart.locator("rect.bar")).to_have_count(3)
    _shot(page, tmp_path, "compare")


def _search(page, expect, url: str, tmp_path: Path) -> None:
    """#search: confidence and paging, an explanation, retrieval, feedback and boosts, a filter, the rules box, a
    refused filter on either side."""
    page.get_by_test_id("tab-search").click()
    expect(page.get_by_test_id("tab-search")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("[data-testid=search-run] option[value=demo]")).to_have_count(1)
    page.get_by_test_id("search-run").select_option("demo")
    page.get_by_test_id("search-input").fill("cordless drill")
    page.get_by_test_id("search-limit").fill("5")
    page.get_by_test_id("search-button").click()
    results = page.get_by_test_id("result")
    expect(results).to_have_count(5, timeout=SERVICE_TIMEOUT_MS)  # the first search opens the run's service
    expect(page.get_by_test_id("search-meta")).to_contain_text("results 1–5 for “cordless drill” in demo")
    for i in range(5):
        expect(results.nth(i).get_by_test_id("result-rank")).to_have_text(str(i + 1))
        expect(results.nth(i).get_by_test_id("confidence")).to_have_text(re.compile(r"^\d{1,3}%$"))
    assert "drill" in results.first.get_by_test_id("result-title").text_content().lower()
    # paging: the next 5, then back
    expect(page.get_by_test_id("prev-page")).to_be_disabled()
    page.get_by_test_id("next-page").click()
    expect(results.first.get_by_test_id("result-rank")).to_have_text("6")
    expect(page.get_by_test_id("search-meta")).to_contain_text("results 6–")
    page.get_by_test_id("prev-page").click()
    expect(results.first.get_by_test_id("result-rank")).to_have_text("1")

    # the explanation of the first hit, tuned beside base
    results.first.get_by_test_id("explain-button").click()
    panel = page.get_by_test_id("explain-panel")
    expect(panel).to_be_visible()
    expect(results.first).to_have_class(re.compile(r"\bexplained\b"))
    for model in ("tuned", "base"):
        column = panel.get_by_test_id(f"explain-{model}")
        expect(column.get_by_test_id("shared-term").first).to_be_visible(timeout=SERVICE_TIMEOUT_MS)
        expect(column.get_by_test_id("query-terms")).to_be_visible()
        expect(column.get_by_test_id("product-terms")).to_be_visible()
        expect(column.get_by_test_id("explain-score")).to_have_text(re.compile(r"^\d+\.\d{3}$"))
    expect(panel.get_by_test_id("product-text")).to_contain_text(results.first.get_by_test_id("result-title").text_content())
    assert _errors(page) == [], _errors(page)
    _shot(page, tmp_path, "search")
    _search_modes(page, expect, url, tmp_path)

    # a filter from the builder: brand = Boltworth and price < 100 (confidence does not apply to filtered lists)
    rows = page.get_by_test_id("filter-row")
    expect(rows).to_have_count(1)
    rows.nth(0).get_by_test_id("filter-field").fill("brand")
    rows.nth(0).get_by_test_id("filter-value").fill("Boltworth")
    page.get_by_test_id("add-filter").click()
    expect(rows).to_have_count(2)
    rows.nth(1).get_by_test_id("filter-field").fill("price")
    rows.nth(1).get_by_test_id("filter-op").select_option("<")
    rows.nth(1).get_by_test_id("filter-value").fill("100")
    expect(page.get_by_test_id("filter-preview")).to_have_text('filter: {"brand":"Boltworth","price":{"lt":100}}')
    page.get_by_test_id("search-button").click()
    meta = page.get_by_test_id("search-meta")
    expect(meta).to_contain_text('filter {"brand":"Boltworth","price":{"lt":100}}')
    expect(meta).to_contain_text("results 1–")
    n = results.count()
    assert n >= 1
    for i in range(n):
        expect(results.nth(i).locator("[data-field=brand]")).to_have_text("brand: Boltworth")
        price = results.nth(i).locator("[data-field=price]").text_content()
        assert float(price.split(":", 1)[1]) < 100, price
        expect(results.nth(i).get_by_test_id("confidence")).to_have_text("—")

    # the run's exclusion rules: none
    page.get_by_test_id("rules-toggle").click()
    expect(page.get_by_test_id("rules-list")).to_have_text("No exclusion rules for this run.")
    expect(page.get_by_test_id("rules-count")).to_have_text("(0)")

    # error paths: each refused filter is one line in the error area, the results stay
    rows.nth(1).get_by_test_id("filter-op").select_option(">")
    rows.nth(1).get_by_test_id("filter-value").fill("cheap")
    expect(page.get_by_test_id("filter-preview")).to_have_text('filter: "price > cheap": a range needs a number')
    page.get_by_test_id("search-button").click()
    messages = page.get_by_test_id("error-message")
    expect(messages).to_have_count(1)
    expect(messages.first.locator(".text")).to_have_text('filter: "price > cheap": a range needs a number')
    expect(results).to_have_count(n)
    rows.nth(1).get_by_test_id("filter-remove").click()
    rows.nth(0).get_by_test_id("filter-field").fill("colour")
    rows.nth(0).get_by_test_id("filter-value").fill("red")
    page.get_by_test_id("search-button").click()
    expect(messages).to_have_count(2)
    refused = messages.nth(1)
    expect(refused.locator(".text")).to_have_text(re.compile(  # the server's detail and its hint
        r"^POST /search → 400: no product has the payload key 'colour'\W.*filter on one of: .*\bbrand\b"))
    expect(page.get_by_test_id("search-meta")).to_have_text("")
    expect(page.get_by_test_id("search-button")).to_be_enabled()
    page.get_by_test_id("search-button").click()  # the same error again: a counter, not a second line
    expect(refused.locator(".count")).to_have_text("×2")
    expect(messages).to_have_count(2)
    for i in range(2):  # one line each
        text, box = messages.nth(i).locator(".text"), messages.nth(i).locator(".text").bounding_box()
        assert "\n" not in text.text_content() and box["height"] < 30, (text.text_content(), box)
    expect(results).to_have_count(n)
    _shot(page, tmp_path, "search-errors")
    for _ in range(2):
        messages.first.get_by_role("button", name="dismiss").click()
    expect(messages).to_have_count(0)


def _search_modes(page, expect, url: str, tmp_path: Path) -> None:
    """The retrieval picker, feedback thumbs and the boost builder: each search shows what POST /search answers
    for the same request (ids in order), and its meta line says what was used. Leaves the form as it found it
    (retrieval sparse, no boost row, no error), limit 10."""
    query = "cordless drill"
    meta = page.get_by_test_id("search-meta")
    results = page.get_by_test_id("result")
    result_ids = results.get_by_test_id("result-id")
    retrieval = page.get_by_test_id("search-retrieval")
    search_button = page.get_by_test_id("search-button")
    expect(retrieval).to_have_value("sparse")
    page.get_by_test_id("search-limit").fill("10")

    # BM25 alone: Qdrant's ranking, and no feedback on it
    retrieval.select_option("bm25")
    search_button.click()
    expect(meta).to_contain_text("retrieval bm25")
    expect(result_ids).to_have_text(_ids(_api_search(url, query=query, run="demo", limit=10, retrieval="bm25")))
    expect(meta).to_contain_text(f"results 1–10 for “{query}” in demo")
    expect(results.first.get_by_test_id("confidence")).to_have_text("—")  # calibrated on the model's scores only
    for thumb in ("thumb-up", "thumb-down"):
        expect(results.first.get_by_test_id(thumb)).to_be_disabled()
        expect(results.first.get_by_test_id(thumb)).to_have_attribute("title", re.compile("feedback needs the model"))

    # hybrid: the fusion the run fitted, named in the meta line
    retrieval.select_option("hybrid")
    expect(results.first.get_by_test_id("thumb-up")).to_be_enabled()
    hybrid = _api_search(url, query=query, run="demo", limit=10, retrieval="hybrid")
    assert hybrid["retrieval"] == "hybrid" and hybrid["fusion"], hybrid
    search_button.click()
    expect(meta).to_contain_text(f"retrieval hybrid (model + BM25), fusion {hybrid['fusion']}")
    expect(result_ids).to_have_text(_ids(hybrid))

    # the tuned model with feedback: the 6th hit clicked, the first skipped
    retrieval.select_option("sparse")
    search_button.click()
    expect(meta).to_contain_text("retrieval sparse (tuned model)")
    expect(meta).not_to_contain_text("feedback")
    plain = _api_search(url, query=query, run="demo", limit=10)
    expect(result_ids).to_have_text(_ids(plain))
    clicked, skipped = _ids(plain)[5], _ids(plain)[0]
    up, down = results.nth(5).get_by_test_id("thumb-up"), results.nth(0).get_by_test_id("thumb-down")
    again, bar = page.get_by_test_id("feedback-search"), page.get_by_test_id("feedback-bar")
    expect(bar).to_be_hidden()
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(again).to_have_text("Re-search with feedback (1)")
    down.click()
    expect(again).to_have_text("Re-search with feedback (2)")
    down.click()  # a second click clears the mark
    expect(down).to_have_attribute("aria-pressed", "false")
    expect(again).to_have_text("Re-search with feedback (1)")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(results.nth(0).get_by_test_id("thumb-up")).to_have_attribute("aria-pressed", "false")
    feedback = [{"product_id": clicked, "score": 1}, {"product_id": skipped, "score": 0}]
    wanted = _api_search(url, query=query, run="demo", limit=10, feedback=feedback)
    assert wanted["feedback"] == 2, wanted
    again.click()
    expect(meta).to_contain_text("feedback: 2 items")
    expect(result_ids).to_have_text(_ids(wanted))
    # the marks stay with the query, on whatever rank their products moved to
    expect(page.locator(f"[data-testid=result][data-product-id='{clicked}'] [data-testid=thumb-up]")).to_have_attribute("aria-pressed", "true")
    expect(again).to_have_text("Re-search with feedback (2)")
    # paging keeps the feedback of the search shown
    page.get_by_test_id("next-page").click()
    expect(meta).to_contain_text("results 11–")
    expect(meta).to_contain_text("feedback: 2 items")
    page.get_by_test_id("prev-page").click()
    expect(meta).to_contain_text("results 1–10")
    expect(result_ids).to_have_text(_ids(wanted))
    page.get_by_test_id("feedback-clear").click()
    expect(bar).to_be_hidden()
    expect(page.locator("[data-testid=thumb-up][aria-pressed=true], [data-testid=thumb-down][aria-pressed=true]")).to_have_count(0)

    # a boost from the builder: in-stock products up
    page.get_by_test_id("add-boost").click()
    boost_rows = page.get_by_test_id("boost-row")
    expect(boost_rows).to_have_count(1)
    boost_rows.nth(0).get_by_test_id("boost-field").fill("in_stock")
    preview = page.get_by_test_id("boost-preview")
    expect(preview).to_have_text('boost: "in_stock" needs a number as its weight')
    search_button.click()  # refused by the builder
    messages = page.get_by_test_id("error-message")
    expect(messages).to_have_count(1)
    expect(messages.first.locator(".text")).to_have_text('boost: "in_stock" needs a number as its weight')
    boost_rows.nth(0).get_by_test_id("boost-weight").fill("2")
    expect(preview).to_have_text('boost: {"in_stock":2}')
    boosted = _api_search(url, query=query, run="demo", limit=10, boost={"in_stock": 2})
    search_button.click()
    expect(meta).to_contain_text('boost {"in_stock":2}')
    expect(meta).not_to_contain_text("feedback")
    expect(result_ids).to_have_text(_ids(boosted))
    # a field no product has: the server's message, naming the fields that can be boosted
    boost_rows.nth(0).get_by_test_id("boost-field").fill("colour")
    search_button.click()
    expect(messages).to_have_count(2)
    expect(messages.nth(1).locator(".text")).to_have_text(re.compile(
        r"^POST /search → 400: no product has the payload field 'colour' to boost by\W.*\bin_stock\b.*\bprice\b"))
    expect(result_ids).to_have_text(_ids(boosted))  # the results stay
    _shot(page, tmp_path, "search-modes")
    boost_rows.nth(0).get_by_test_id("boost-remove").click()
    expect(boost_rows).to_have_count(0)
    expect(preview).to_have_text("")
    for _ in range(2):
        messages.first.get_by_role("button", name="dismiss").click()
    expect(messages).to_have_count(0)
