"""The studio's background jobs beside training, end to end through the HTTP API: an evaluation (`sparsefit
evaluate` in a child process) and its report, kept across a restart; publishing to the fake hub and the .tar.gz
download, with the token nowhere but in the call; a training job that starts from the saved Settings, its LLM
key reaching the child through the environment only. Real child processes, real files: the slow tier."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import tarfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.serving.app import create_app
from tests.conftest import EXAMPLES
from tests.fake_hub import fake_hub
from tests.queries.fake_llm import FakeLLM

pytestmark = pytest.mark.slow

LOCAL = "http://127.0.0.1"
HUB_TOKEN = "hf_studioPublishToken0123456789"
LLM_KEY = "sk-studio-llm-key-0123456789"


def _wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while not (value := predicate()):
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return value


def _ended(client: TestClient, path: str, timeout: float = 300) -> dict:
    return _wait(lambda: (j := client.get(path).json())["status"] not in ("queued", "running") and j, timeout, path)


@pytest.fixture
def workspace(tmp_path):
    """The workspace; every child process a job left running is stopped at the end."""
    ws = tmp_path / "ws"
    yield ws
    for file in ws.glob("jobs/**/*.json"):
        job = json.loads(file.read_text())
        if job.get("status") == "running" and job.get("pid"):
            try:
                os.killpg(job["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _table_in_log(log: list[str]) -> list[list[str]]:
    """The rows of the table `sparsefit evaluate` printed (rich's box drawing), as cells."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in log if line.startswith("│")]


def test_an_evaluation_runs_in_the_background_and_its_report_is_the_clis(tiny_run, tiny_model, workspace):
    shutil.copytree(tiny_run, workspace / "runs" / "shop")
    catalog, judgments = str(EXAMPLES / "catalog.csv"), str(EXAMPLES / "judged_queries.csv")
    app = create_app([], workspace=workspace, allowed_roots=[EXAMPLES, tiny_model.parent])
    with TestClient(app, base_url=LOCAL) as client:
        # With one slot, an evaluation waits while a training job has the cores, and starts when it ends.
        client.put("/api/settings", json={"training": {"negatives": 3}, "llm_url": "http://127.0.0.1:9/v1", "llm_model": "m"})
        training = client.post("/api/jobs", json={"catalog": catalog, "judgments": judgments, "name": "busy", "options": {
            "base_model": str(tiny_model), "rounds": 1, "epochs": 50, "train_batch_size": 8}})
        assert training.status_code == 201 and training.json()["status"] == "running", training.text
        # the saved defaults apply; the LLM only writes queries for a run without judgments, so this one gets none
        assert training.json()["options"] == {"negatives": 3, "base_model": str(tiny_model), "rounds": 1, "epochs": 50,
                                              "train_batch_size": 8}
        started = client.post("/api/evaluations", json={"catalog": catalog, "judgments": judgments, "runs": ["shop"],
                                                        "split_run": "shop", "name": "held-out", "options": {"retrieval": "bm25"}})
        assert started.status_code == 201, started.text
        job = started.json()
        assert job["status"] == "queued" and job["progress"] == {"inputs": False, "indexed": 0, "models": 1, "report": False}
        assert client.post("/api/evaluations", json={"catalog": catalog, "judgments": judgments, "runs": ["shop"],
                                                     "name": "held-out"}).status_code == 409  # the name is taken
        client.post(f"/api/jobs/{training.json()['id']}/cancel")
        _wait(lambda: client.get(f"/api/evaluations/{job['id']}").json()["status"] != "queued", 120, "the evaluation to start")
        assert client.get(f"/api/jobs/{training.json()['id']}").json()["status"] == "cancelled"

        done = _ended(client, f"/api/evaluations/{job['id']}")
        assert done["status"] == "finished", done
        assert done["progress"] == {"inputs": True, "indexed": 1, "models": 1, "report": True}
        report = done["report"]
        assert report["rows"] == _table_in_log(done["log"])  # the very table the CLI printed, cell for cell
        assert report["title"] in done["log"] and report["columns"][0] == "system"
        systems = [row[0] for row in report["rows"]]
        assert systems[0] == "bm25" and "bm25 (Qdrant)" in systems and len(systems) == 3
        model = done["models"][0]["system"]
        assert model == "run shop" and systems[-1] == "run shop"  # named after the run, not its base model
        assert report["labels"] == {"run shop": f"round 0, tuned from {tiny_model.name}"}
        folder = workspace / "evaluations" / "held-out"
        assert json.loads((folder / "split.json").read_text()) == json.loads((workspace / "runs/shop/split.json").read_text())
        assert {"report.json", "per_query.csv", "runs.jsonl", "config.yaml"} <= {p.name for p in folder.iterdir()}

        # Its index is listed on the Collections page, made by the evaluation.
        [index] = [c for c in client.get("/api/collections").json()["edge"] if c["kind"] == "evaluation"]
        assert index["owner"] == "held-out" and index["points"] > 0 and index["model"] == "run shop"
        assert index["name"] == "evaluations/held-out/indexes/run-shop"
    app.state.runs.close()

    # A restarted studio lists it with its report.
    again = create_app([], workspace=workspace, allowed_roots=[EXAMPLES])
    with TestClient(again, base_url=LOCAL) as client:
        [listed] = client.get("/api/evaluations").json()["evaluations"]
        assert listed["status"] == "finished" and listed["report"]["best"] in systems
        assert client.get(f"/api/evaluations/{job['id']}").json()["report"]["rows"] == report["rows"]
        assert client.delete(f"/api/evaluations/{job['id']}").json() == {"deleted": "held-out"}
        assert not folder.exists() and client.get("/api/evaluations").json()["evaluations"] == []
    again.state.runs.close()


def test_publishing_sends_the_run_to_the_hub_and_the_token_goes_nowhere_else(tiny_run, workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # as the tests run: the publish job goes online by itself
    run = Path(shutil.copytree(tiny_run, workspace / "runs" / "shop"))
    app = create_app([], workspace=workspace, allowed_roots=[EXAMPLES])
    answers: list[str] = []
    with fake_hub(HUB_TOKEN) as hub, TestClient(app, base_url=LOCAL) as client:
        def call(method: str, path: str, **kwargs):
            response = client.request(method, path, **kwargs)
            answers.append(response.text)
            return response

        started = call("POST", "/api/publish", json={"run": "shop", "repo": "acme/shop-splade", "token": HUB_TOKEN,
                                                     "endpoint": hub.url, "private": True, "archive": True})
        assert started.status_code == 201, started.text
        job = _wait(lambda: (j := call("GET", f"/api/publish/{started.json()['id']}").json())["status"]
                    not in ("queued", "running") and j, 180, "the publish job")
        assert job["status"] == "finished", job
        files = hub.files("acme/shop-splade")
        model_files = {p.relative_to(run / "model").as_posix(): p.read_bytes() for p in (run / "model").rglob("*")
                       if p.is_file() and p.name != "README.md"}
        assert {k: v for k, v in files.items() if k not in ("README.md", ".gitattributes")} == model_files
        assert files["README.md"].startswith(b"---\nlicense:") and hub.repos["acme/shop-splade"].private is True
        assert job["commit_url"] == f"{hub.url}/acme/shop-splade/commit/{hub.repos['acme/shop-splade'].branches['main']}"

        # the archive: the same files under one folder named after the run
        download = call("GET", job["archive_url"])
        assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
        assert "attachment" in download.headers["content-disposition"] and job["archive"] in download.headers["content-disposition"]
        with tarfile.open(fileobj=io.BytesIO(download.content)) as archive:
            names = {m.name for m in archive.getmembers() if m.isfile()}
        assert names == {f"shop/{name}" for name in model_files} | {"shop/README.md"}

        # a refused token: the job fails with the hub's reason, and that token goes nowhere either
        refused = call("POST", "/api/publish", json={"run": "shop", "repo": "acme/other", "token": "hf_wrongToken987654321",
                                                     "endpoint": hub.url})
        failed = _wait(lambda: (j := call("GET", f"/api/publish/{refused.json()['id']}").json())["status"]
                       not in ("queued", "running") and j, 180, "the refused publish")
        assert failed["status"] == "failed" and "refused the token" in failed["reason"], failed
        call("GET", "/api/publish")
        argv = app.state.studio.publishing._argv(app.state.studio.publishing.get(job["id"]))
        assert HUB_TOKEN not in " ".join(argv)  # the child's command line (its environment carried the token)
        assert hub.unhandled == []
    for token in (HUB_TOKEN, "hf_wrongToken987654321"):
        assert not [p for p in workspace.rglob("*") if p.is_file() and token.encode() in p.read_bytes()], token
        assert not [a for a in answers if token in a], token
    app.state.runs.close()


def test_a_training_job_starts_from_the_saved_settings_and_gets_the_llm_key_by_environment(tiny_model, workspace, tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the job's LLM answers cache: empty, so it asks
    catalog = str(EXAMPLES / "catalog.csv")
    app = create_app([], workspace=workspace, allowed_roots=[EXAMPLES, tiny_model.parent])
    with FakeLLM() as llm, TestClient(app, base_url=LOCAL) as client:
        saved = client.put("/api/settings", json={
            "training": {"base_model": str(tiny_model), "rounds": 1, "train_batch_size": 8, "query_products": 20},
            "llm_url": llm.url, "llm_model": "fake-model", "llm_api_key": LLM_KEY})
        assert saved.status_code == 200, saved.text
        started = client.post("/api/jobs", json={"catalog": catalog, "name": "generated", "options": {"rounds": 2, "seed": ""}})
        assert started.status_code == 201, started.text
        job = started.json()
        assert job["options"] == {"base_model": str(tiny_model), "rounds": 2, "train_batch_size": 8, "query_products": 20,
                                  "llm_url": llm.url, "llm_model": "fake-model"}  # the request's rounds win
        argv = app.state.studio.jobs._argv(job)
        assert argv[argv.index("--llm-url") + 1] == llm.url and argv[argv.index("--llm-model") + 1] == "fake-model"
        assert LLM_KEY not in " ".join(argv)
        state = workspace / "runs" / "generated" / "state.json"
        _wait(lambda: state.is_file() and "queries" in json.loads(state.read_text())["done"], 240, "the generated queries")
        assert llm.requests >= 2 and llm.authorization == {f"Bearer {LLM_KEY}"}  # the key reached the LLM
        client.post(f"/api/jobs/{job['id']}/cancel")
        ended = _ended(client, f"/api/jobs/{job['id']}", 120)
        assert ended["status"] == "cancelled"
        assert any(re.search(r"fake-model", line) for line in ended["log"])
        assert not [p for p in workspace.rglob("*") if p.is_file() and p.name != "secrets.json" and LLM_KEY.encode() in p.read_bytes()]
    app.state.runs.close()
