"""The studio browser test's drivers for the Settings, Evaluate, Collections and Publish pages and for Resume on the
Jobs page (test_studio_browser.py runs them in order, in one real Chromium, against one studio process).

Each takes the Playwright page and ``expect``, the studio's URL where it asks the API itself, and saves a
screenshot of its page through ``shot(page, name)``.
"""

from __future__ import annotations

import json
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN = "studio-browser-test-token-0123456789"  # the studio's own bearer token (test_studio_browser.TOKEN)
LLM_KEY = "sk-browser-llm-key-0123456789abcdef"
HUB_TOKEN = "hf_browserPublishToken0123456789"
EVALUATION_TIMEOUT_MS = 4 * 60 * 1000
PUBLISH_TIMEOUT_MS = 2 * 60 * 1000
TRAINING_TIMEOUT_MS = 8 * 60 * 1000


def api(url: str, path: str, *, method: str = "GET", body: Any = None) -> tuple[int, str]:
    """A request to the studio from here (not through the page): (status, body text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", **({"Content-Type": "application/json"} if data is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def files_holding(folder: Path, secret: str) -> list[str]:
    """The files under ``folder`` whose bytes hold ``secret``."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def stop_jobs(workspace: Path) -> None:
    """Stop any job process the studio left running (after a failure): each runs in its own process group."""
    import os
    import signal

    for file in workspace.glob("jobs/**/*.json"):
        try:
            job = json.loads(file.read_text())
            if job.get("status") == "running" and job.get("pid"):
                os.killpg(job["pid"], signal.SIGKILL)
        except (OSError, ValueError):
            pass


def pick_file(page, select: str, suffix: str) -> None:
    values = [o.get_attribute("value") or "" for o in page.locator(f"[data-testid={select}] option").all()]
    matches = [v for v in values if v.replace("\\", "/").endswith(suffix)]
    assert matches, f"{suffix} is not offered in {select}: {values}"
    page.get_by_test_id(select).select_option(matches[0])


def settings(page, expect, url: str, workspace: Path, shot: Callable) -> None:
    """#settings: save defaults for new runs, the LLM endpoint and its key; after a reload the values are there and
    the key shows only as set (never in the page, an answer or a file but its own)."""
    page.get_by_test_id("tab-settings").click()
    expect(page.get_by_test_id("llm-key-state")).to_have_text("not set")
    expect(page.get_by_test_id("set-negatives")).to_have_attribute("placeholder", "default 2")  # sparsefit's default
    page.get_by_test_id("set-negatives").fill("3")
    page.get_by_test_id("set-llm_url").fill("http://127.0.0.1:9/v1")
    page.get_by_test_id("set-llm_model").fill("llama3.1:8b")
    page.get_by_test_id("set-llm_api_key").fill(LLM_KEY)
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-status")).to_contain_text("saved")
    expect(page.get_by_test_id("llm-key-state")).to_have_text("set")
    expect(page.get_by_test_id("set-llm_api_key")).to_have_value("")
    page.reload()
    expect(page.get_by_test_id("llm-key-state")).to_have_text("set")
    expect(page.get_by_test_id("qdrant-key-state")).to_have_text("not set")
    expect(page.get_by_test_id("set-negatives")).to_have_value("3")
    expect(page.get_by_test_id("set-llm_url")).to_have_value("http://127.0.0.1:9/v1")
    expect(page.get_by_test_id("set-llm_model")).to_have_value("llama3.1:8b")
    expect(page.get_by_test_id("set-llm_api_key")).to_have_value("")
    expect(page.get_by_test_id("set-llm_api_key")).to_have_attribute("placeholder", re.compile("^stored"))
    shot(page, "settings")
    assert LLM_KEY not in page.content()
    status, text = api(url, "/api/settings")
    assert status == 200 and json.loads(text)["llm_api_key"] == {"set": True} and LLM_KEY not in text
    assert [Path(p).name for p in files_holding(workspace, LLM_KEY)] == ["secrets.json"]


def evaluate(page, expect, url: str, workspace: Path, shot: Callable) -> str:
    """#evaluate: the run demo and the base model on the run's own held-out queries; the table the page shows is the
    report the CLI printed. Returns the name of the base model's index."""
    page.get_by_test_id("tab-evaluate").click()
    expect(page.get_by_test_id("eval-form")).to_be_visible()
    expect(page.locator("[data-testid=eval-catalog] option").nth(1)).to_be_attached()
    pick_file(page, "eval-catalog", "/examples/catalog.csv")
    pick_file(page, "eval-judgments", "/examples/judged_queries.csv")
    page.locator("[data-testid=eval-run][data-run=demo]").check()
    expect(page.get_by_test_id("eval-split")).to_have_value("demo")  # the run's held-out queries, picked for it
    page.locator("[data-testid=eval-base][data-model=splade-tiny]").check()
    page.get_by_test_id("eval-name").fill("held-out")
    page.get_by_test_id("eval-start").click()
    page.wait_for_url(re.compile(r"#evaluate/[0-9a-f]{10}$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("eval-title")).to_have_text("held-out")
    state = page.get_by_test_id("eval-state")
    expect(state).to_have_text(re.compile(r"^(finished|failed|cancelled)$"), timeout=EVALUATION_TIMEOUT_MS)
    assert state.text_content() == "finished", page.get_by_test_id("eval-log").text_content()
    expect(page.get_by_test_id("eval-stage").filter(has_text="models indexed 2 / 2")).to_have_class(re.compile(r"\bdone\b"))
    detail = json.loads(api(url, f"/api/evaluations/{job_id}")[1])
    cli = [[c.strip() for c in line.strip().strip("│").split("│")] for line in detail["log"] if line.startswith("│")]
    rows = page.get_by_test_id("eval-row")
    expect(rows).to_have_count(3)  # bm25, the base model, the run's model
    shown = [[rows.nth(i).get_attribute("data-system")] + rows.nth(i).locator("td.num").all_text_contents() for i in range(3)]
    assert shown == detail["report"]["rows"] == cli, (shown, cli)
    assert [row[0] for row in shown] == ["bm25", "splade-tiny", "run demo"]  # the tuned model is named after its run
    expect(page.locator("[data-testid=eval-row][data-system='run demo'] td").first).to_contain_text("round 0, tuned from splade-tiny")
    expect(page.locator("[data-testid=eval-row][data-system=bm25] td.num").nth(5)).to_have_text("1.000×")
    expect(page.get_by_test_id("eval-report-title")).to_have_text(detail["report"]["title"])
    expect(page.locator(f"[data-testid=eval-item][data-eval-id='{job_id}'] [data-testid=eval-badge]")).to_have_text("finished")
    assert (workspace / "evaluations" / "held-out" / "report.json").is_file()
    shot(page, "evaluate")
    return "evaluations/held-out/indexes/splade-tiny"


def collections(page, expect, url: str, workspace: Path, doomed: str, shot: Callable) -> None:
    """#collections: the run's index with its point count, the evaluation's; one deleted after its name is typed."""
    catalog_size = sum(1 for _ in (Path(__file__).resolve().parents[2] / "examples" / "catalog.csv").open()) - 1
    page.get_by_test_id("tab-collections").click()
    run_row = page.locator("[data-testid=edge-row][data-name='runs/demo/index']")
    expect(run_row.get_by_test_id("collection-points")).to_have_text(f"{catalog_size:,}")
    expect(run_row.get_by_test_id("collection-owner")).to_have_text("run demo")
    expect(run_row.get_by_test_id("collection-vectors")).to_contain_text("sparse: bm25 (idf) sparse")
    expect(run_row.get_by_test_id("collection-size")).to_have_text(re.compile(r"^\d+(\.\d)? (B|KB|MB)$"))
    row = page.locator(f"[data-testid=edge-row][data-name='{doomed}']")
    expect(row.get_by_test_id("collection-points")).to_have_text(f"{catalog_size:,}")
    expect(row.get_by_test_id("collection-owner")).to_have_text("evaluation held-out")
    expect(page.get_by_test_id("server-note")).to_contain_text("No Qdrant server is set")
    # without the typed name the API refuses, and so does the page
    status, text = api(url, f"/api/collections/edge/{doomed}", method="DELETE", body={"confirm": "splade-tiny"})
    assert status == 400 and "confirm" in text
    row.get_by_test_id("collection-delete").click()
    confirm = page.get_by_test_id("delete-confirm")
    expect(confirm).to_be_visible()
    expect(page.get_by_test_id("delete-title")).to_contain_text(doomed)
    go = page.get_by_test_id("delete-go")
    expect(go).to_be_disabled()
    page.get_by_test_id("delete-name").fill(doomed[:-1])
    expect(go).to_be_disabled()
    page.get_by_test_id("delete-name").fill(doomed)
    expect(go).to_be_enabled()
    shot(page, "collections")
    go.click()
    expect(confirm).to_be_hidden()
    expect(row).to_have_count(0)
    expect(run_row).to_have_count(1)
    assert not (workspace / doomed).exists() and (workspace / "evaluations/held-out/report.json").is_file()


def publish(page, expect, url: str, workspace: Path, hub, tmp_path: Path, shot: Callable) -> None:
    """#publish: the run to the fake hub (its files arrive; the token goes nowhere else), then its .tar.gz."""
    page.get_by_test_id("tab-publish").click()
    expect(page.locator("[data-testid=publish-run] option[value=demo]")).to_have_count(1)
    page.get_by_test_id("publish-run").select_option("demo")
    page.get_by_test_id("publish-repo").fill("acme/demo-splade")
    page.get_by_test_id("publish-token").fill(HUB_TOKEN)
    page.get_by_test_id("publish-endpoint").fill(hub.url)
    page.get_by_test_id("publish-go").click()
    expect(page.get_by_test_id("publish-token")).to_have_value("")  # the page forgets it once it is sent
    row = page.get_by_test_id("publish-row").first
    expect(row.get_by_test_id("publish-state")).to_have_text(re.compile(r"^(finished|failed|cancelled)$"), timeout=PUBLISH_TIMEOUT_MS)
    assert row.get_by_test_id("publish-state").text_content() == "finished", row.text_content()
    files = hub.files("acme/demo-splade")
    model = workspace / "runs" / "demo" / "model"
    wanted = {p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file() and p.name != "README.md"}
    assert set(files) == wanted | {"README.md", ".gitattributes"}, sorted(files)
    assert files["config.json"] == (model / "config.json").read_bytes()
    assert files["README.md"].startswith(b"---\n") and files["README.md"].endswith((model.parent / "README.md").read_bytes())
    commit = hub.repos["acme/demo-splade"].branches["main"]
    expect(row.get_by_test_id("commit-link")).to_have_attribute("href", f"{hub.url}/acme/demo-splade/commit/{commit}")

    with page.expect_download(timeout=PUBLISH_TIMEOUT_MS) as download:
        page.get_by_test_id("archive-go").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith("demo-") and saved.name.endswith(".tar.gz")
    with tarfile.open(saved) as archive:
        names = {m.name for m in archive.getmembers() if m.isfile()}
    assert names == {f"demo/{name}" for name in wanted} | {"demo/README.md"}
    expect(page.get_by_test_id("archive-link")).to_have_count(1)
    shot(page, "publish")

    assert HUB_TOKEN not in page.content()
    assert files_holding(workspace, HUB_TOKEN) == []
    for path in ("/api/publish", "/api/jobs", "/api/settings", "/api/collections", "/api/evaluations"):
        assert HUB_TOKEN not in api(url, path)[1], path
    job = json.loads(api(url, "/api/publish")[1])["jobs"]
    for each in job:
        assert HUB_TOKEN not in api(url, f"/api/publish/{each['id']}")[1]


def resume(page, expect, shot: Callable) -> None:
    """#jobs: a run cancelled once its inputs are loaded is incomplete; Resume continues it to the end."""
    page.get_by_test_id("tab-train").click()
    expect(page.locator("[data-testid=catalog-select] option").nth(1)).to_be_attached()  # the files, loaded again
    pick_file(page, "catalog-select", "/examples/catalog.csv")
    pick_file(page, "judgments-select", "/examples/judged_queries.csv")
    page.get_by_test_id("run-name").fill("resume-me")
    page.get_by_test_id("rounds").fill("1")
    page.get_by_test_id("base-model").fill("splade-tiny")
    page.get_by_test_id("start-run").click()
    page.wait_for_url(re.compile(r"#jobs/[0-9a-f]{10}$"))
    expect(page.get_by_test_id("job-title")).to_have_text("resume-me")
    expect(page.get_by_test_id("stage-done").filter(has_text="inputs")).to_have_count(1, timeout=TRAINING_TIMEOUT_MS)
    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel the training run …?"
    page.get_by_test_id("cancel-job").click()
    status = page.get_by_test_id("job-status")
    expect(status).to_have_text("cancelled", timeout=TRAINING_TIMEOUT_MS)
    button = page.get_by_test_id("resume-job")
    expect(button).to_be_visible()
    expect(page.get_by_test_id("stage-pending").filter(has_text="export")).to_have_count(1)
    button.click()
    expect(status).to_have_text(re.compile(r"^(queued|running)$"))
    expect(button).to_be_hidden()
    expect(page.get_by_test_id("job-log")).to_contain_text("--- resumed")
    expect(status).to_have_text(re.compile(r"^(finished|failed|cancelled)$"), timeout=TRAINING_TIMEOUT_MS)
    assert status.text_content() == "finished", page.get_by_test_id("job-log").text_content()
    expect(page.get_by_test_id("job-log")).to_contain_text("Resuming")
    expect(page.get_by_test_id("stage-done").filter(has_text="export")).to_have_count(1)
    expect(page.get_by_test_id("stage-pending")).to_have_count(0)
    shot(page, "jobs-resumed")
