"""The studio's Settings, Collections, Evaluate and Publish pages through their HTTP API (no child process here:
what they start is tested in test_studio_tasks.py, slow). Real parts: the tiny training run's Qdrant Edge index,
real files in a real workspace, FastAPI's TestClient over the real app."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.evaluation.report import Report, SystemResult
from sparsefit.files import write_json
from sparsefit.serving.app import create_app
from sparsefit.serving.pages_evaluate import report_table
from tests.conftest import EXAMPLES

LOCAL = "http://127.0.0.1"
KEY = "sk-live-0123456789abcdefSECRET"


@pytest.fixture
def workspace(tmp_path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def studio(workspace, tmp_path):
    """The studio over an empty workspace, reading examples/ and tmp_path/data."""
    (tmp_path / "data").mkdir()
    app = create_app([], workspace=workspace, allowed_roots=[EXAMPLES, tmp_path / "data"])
    with TestClient(app, base_url=LOCAL) as client:
        yield client
    app.state.runs.close()


def _run_copy(tiny_run: Path, workspace: Path, name: str) -> Path:
    """A copy of the finished tiny run as a run of the workspace (its own Edge index)."""
    return Path(shutil.copytree(tiny_run, workspace / "runs" / name))


def _everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# -- Settings ---------------------------------------------------------------------------------------
def test_settings_are_saved_in_the_workspace_and_keys_are_write_only(studio, workspace):
    empty = studio.get("/api/settings").json()
    assert empty["training"] == {} and empty["llm_api_key"] == {"set": False} and empty["qdrant_api_key"] == {"set": False}
    assert empty["defaults"]["training"]["rounds"] == 3  # what an empty field stands for: sparsefit's Settings

    saved = studio.put("/api/settings", json={
        "training": {"rounds": 2, "negatives": "4", "learning_rate": 0.0005, "architecture": "inference-free", "seed": ""},
        "llm_url": "http://localhost:11434/v1", "llm_model": "llama3.1:8b", "llm_api_key": KEY,
        "qdrant_url": "http://qdrant.internal:6333"})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["training"] == {"rounds": 2, "negatives": 4, "learning_rate": 0.0005, "architecture": "inference-free"}
    assert (body["llm_url"], body["llm_model"], body["qdrant_url"]) == ("http://localhost:11434/v1", "llama3.1:8b",
                                                                       "http://qdrant.internal:6333")
    assert body["llm_api_key"] == {"set": True} and body["qdrant_api_key"] == {"set": False}
    assert KEY not in saved.text and KEY not in studio.get("/api/settings").text

    # kept in the workspace: the plain file without the key, the key in its own file that only we may read
    private = workspace / ".studio"
    assert KEY not in (private / "settings.json").read_text()
    assert json.loads((private / "secrets.json").read_text()) == {"llm_api_key": KEY}
    assert stat.S_IMODE((private / "secrets.json").stat().st_mode) == 0o600
    assert not list(private.glob(".*"))  # no temporary file left behind

    # the Train form's defaults are the saved ones, the LLM endpoint among them
    training = studio.get("/api/defaults").json()["training"]
    assert training["rounds"] == 2 and training["negatives"] == 4 and training["llm_model"] == "llama3.1:8b"
    assert training["train_batch_size"] == 64  # not saved: sparsefit's own default

    # an empty key field keeps the key; other fields given change, those left out stay
    kept = studio.put("/api/settings", json={"llm_api_key": "", "qdrant_api_key": None, "llm_model": ""}).json()
    assert kept["llm_api_key"] == {"set": True} and kept["llm_model"] is None and kept["llm_url"] == "http://localhost:11434/v1"
    assert kept["training"]["rounds"] == 2
    # an explicit clear removes it
    cleared = studio.put("/api/settings", json={"clear": ["llm_api_key"]}).json()
    assert cleared["llm_api_key"] == {"set": False}
    assert json.loads((private / "secrets.json").read_text()) == {}
    both = studio.put("/api/settings", json={"llm_api_key": KEY, "clear": ["llm_api_key"]})
    assert both.status_code == 400 and "both given and cleared" in both.json()["detail"] and KEY not in both.text


def test_a_stored_key_goes_only_to_the_url_it_was_saved_with(studio, workspace):
    studio.put("/api/settings", json={"qdrant_url": "http://qdrant:6333", "qdrant_api_key": "qdrant-key-0123",
                                      "llm_url": "http://llm.internal/v1", "llm_api_key": KEY})
    moved = studio.put("/api/settings", json={"qdrant_url": "http://elsewhere.example:6333"}).json()
    assert moved["qdrant_api_key"] == {"set": False} and moved["llm_api_key"] == {"set": True}
    again = studio.put("/api/settings", json={"llm_url": "http://other.example/v1", "llm_api_key": "sk-new-key-0123"}).json()
    assert again["llm_api_key"] == {"set": True}  # a new URL with its own key keeps that key
    assert json.loads((workspace / ".studio" / "secrets.json").read_text()) == {"llm_api_key": "sk-new-key-0123"}
    job = studio.post("/api/jobs", json={"catalog": str(EXAMPLES / "catalog.csv"), "name": "llm-elsewhere",
                                         "options": {"llm_url": "http://third.example/v1", "llm_model": "gpt-x"}})
    assert job.status_code == 400 and "only to the LLM URL saved with it" in job.json()["detail"]


@pytest.mark.parametrize(("change", "status", "named"), [
    ({"llm_url": "ftp://example.com"}, 400, "http:// or https://"),
    ({"llm_url": "javascript:alert(1)"}, 400, "http:// or https://"),
    ({"qdrant_url": "http://"}, 400, "http:// or https://"),
    ({"qdrant_url": "http://host:99999"}, 400, "http:// or https://"),
    ({"llm_model": "--rounds"}, 400, "llm_model"),
    ({"llm_model": "gpt 4"}, 400, "llm_model"),
    ({"llm_api_key": "sk-with a space"}, 400, "spaces or control characters"),
    ({"training": {"rounds": 0}}, 400, "rounds"),
    ({"training": {"rm": "-rf"}}, 400, "unknown training option 'rm'"),
    ({"training": {"llm_url": "http://x"}}, 400, "LLM section"),
    ({"training": {"base_model": "/etc"}}, 403, "base_model"),
    ({"clear": ["token"]}, 422, "clear"),
    ({"colour": "red"}, 422, "colour"),
])
def test_a_refused_setting_is_one_clear_4xx_and_nothing_is_saved(studio, workspace, change, status, named):
    studio.put("/api/settings", json={"training": {"rounds": 2}, "llm_api_key": KEY})
    before = studio.get("/api/settings").json()
    response = studio.put("/api/settings", json=change)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert named in detail and "\n" not in detail and KEY not in detail
    assert studio.get("/api/settings").json() == before


def test_damaged_settings_files_are_reported_not_a_500(studio, workspace):
    studio.put("/api/settings", json={"training": {"rounds": 2}})
    (workspace / ".studio" / "settings.json").write_text("{not json")
    shown = studio.get("/api/settings")
    assert shown.status_code == 200 and "damaged" in shown.json()["problem"] and shown.json()["training"] == {}
    write_json(workspace / ".studio" / "settings.json", {"training": {"rounds": 500}})  # edited by hand
    assert "bad value" in studio.get("/api/settings").json()["problem"]
    assert studio.get("/api/defaults").json()["training"]["rounds"] == 3  # the bad value is not used
    assert studio.put("/api/settings", json={"training": {"rounds": 2}}).json()["problem"] is None  # saving repairs it


def test_the_private_folder_is_never_read_as_data(studio, workspace):
    studio.put("/api/settings", json={"llm_api_key": KEY})
    for path in (str(workspace / ".studio" / "secrets.json"), ".studio/secrets.json", str(workspace / ".studio")):
        for request in ({"catalog": path}, {"catalog": str(EXAMPLES / "catalog.csv"), "options": {"base_model": path}}):
            response = studio.post("/api/jobs", json=request)
            assert response.status_code == 403 and "private folder" in response.json()["detail"], (path, response.text)
            assert KEY not in response.text
    assert not [f for f in studio.get("/api/files").json()["files"] if ".studio" in f["path"]]
    assert not list((workspace / "jobs").glob("*.json"))


def test_llm_options_are_typed_and_bounded_and_reach_the_command_line(workspace):
    from sparsefit.serving.job_options import parse_options
    from sparsefit.serving.jobs import JobManager

    checked = parse_options({"llm_url": " https://api.example.com/v1 ", "llm_model": "gpt-4o-mini"})
    assert checked == {"llm_url": "https://api.example.com/v1", "llm_model": "gpt-4o-mini"}
    for bad in ({"llm_url": "file:///etc/passwd"}, {"llm_url": 42}, {"llm_url": "http://a b"}, {"llm_model": "-x"},
                {"llm_model": "a" * 201}):
        with pytest.raises(Exception, match="llm_"):
            parse_options(bad)
    argv = JobManager(workspace)._argv({"catalog": "c.csv", "judgments": None, "run": "r", "options": checked})
    assert argv[argv.index("--llm-url") + 1] == "https://api.example.com/v1"
    assert argv[argv.index("--llm-model") + 1] == "gpt-4o-mini"


# -- Collections ------------------------------------------------------------------------------------
def test_collections_list_the_runs_indexes_with_points_vectors_size_and_owner(studio, workspace, tiny_run):
    run = _run_copy(tiny_run, workspace, "shop")
    edge = studio.get("/api/collections").json()["edge"]
    assert [c["name"] for c in edge] == ["runs/shop/index"]
    index = edge[0]
    catalog_size = sum(1 for _ in (EXAMPLES / "catalog.csv").open(encoding="utf-8")) - 1
    assert index["points"] == catalog_size and index["engine"] == "edge"
    model = json.loads((run / "index" / "sparsefit_meta.json").read_text())["model_name"]  # the exported model's name
    assert (index["kind"], index["owner"], index["model"], index["deletable"], index["in_use"]) == ("run", "shop", model, True, None)
    assert {"name": "sparse", "modifier": "none"} in index["sparse_vectors"]
    assert {"name": "bm25", "modifier": "idf"} in index["sparse_vectors"]  # Qdrant's BM25 beside the model's vectors
    assert index["dense_vectors"] == []
    on_disk = sum(f.stat().st_blocks * 512 for f in (run / "index").rglob("*") if f.is_file())  # as du counts
    assert index["size_bytes"] == on_disk > 0
    server = studio.get("/api/collections").json()["server"]
    assert server == {"url": None, "collections": [], "error": None}


def test_deleting_an_index_needs_its_name_typed_again(studio, workspace, tiny_run):
    folder = _run_copy(tiny_run, workspace, "shop") / "index"
    url = "/api/collections/edge/runs/shop/index"
    for body, fragment in ((None, "confirm"), ({}, "confirm"), ({"confirm": "shop"}, "confirm"),
                           ({"confirm": "runs/shop/index "}, "confirm")):
        response = studio.request("DELETE", url, json=body) if body is not None else studio.delete(url)
        assert response.status_code == 400 and fragment in response.json()["detail"], response.text
        assert folder.is_dir()
    assert studio.request("DELETE", "/api/collections/edge/runs/nope/index", json={"confirm": "runs/nope/index"}).status_code == 404
    assert studio.request("DELETE", "/api/collections/edge/../../etc", json={"confirm": "../../etc"}).status_code == 404

    # the Search page has the run open (its service holds the folder): deleting closes it first
    assert studio.post("/search", json={"query": "drill", "run": "shop"}).status_code == 200
    assert studio.get("/api/collections").json()["edge"][0]["points"] > 0  # counted through the open service
    done = studio.request("DELETE", url, json={"confirm": "runs/shop/index"})
    assert done.status_code == 200 and done.json() == {"deleted": "runs/shop/index", "engine": "edge"}
    assert not folder.exists() and (folder.parent / "model").is_dir()  # the run keeps its model
    assert studio.get("/api/collections").json()["edge"] == []
    again = studio.post("/search", json={"query": "drill", "run": "shop"})
    assert again.status_code == 400 and "no catalog index" in again.json()["detail"]


def test_an_index_in_use_by_a_running_job_is_neither_opened_nor_deleted(studio, workspace, tiny_run):
    folder = _run_copy(tiny_run, workspace, "busy") / "index"
    # a training job of that run, running as far as the studio can tell: a live process started for it
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        ticks = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        write_json(workspace / "jobs" / "aaaaaaaaa1.json", {
            "id": "aaaaaaaaa1", "run": "busy", "catalog": "c.csv", "judgments": None, "options": {}, "pid": child.pid,
            "pid_start": ticks, "created": time.time(), "started": time.time(), "finished": None, "returncode": None,
            "status": "running", "reason": None, "cancel_requested": False})
        listed = studio.get("/api/collections").json()["edge"][0]
        assert listed["points"] is None and "aaaaaaaaa1" in listed["in_use"] and "in use" in listed["note"]
        refused = studio.request("DELETE", "/api/collections/edge/runs/busy/index", json={"confirm": "runs/busy/index"})
        assert refused.status_code == 409 and "in use by training job aaaaaaaaa1" in refused.json()["detail"]
        assert folder.is_dir()
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def test_a_served_run_outside_the_workspace_is_listed_but_never_deleted(tiny_run, tmp_path):
    own = Path(shutil.copytree(tiny_run, tmp_path / "served"))
    app = create_app([own], workspace=tmp_path / "ws", allowed_roots=[EXAMPLES])
    with TestClient(app, base_url=LOCAL) as client:
        listed = client.get("/api/collections").json()["edge"]
        assert [(c["name"], c["kind"], c["deletable"]) for c in listed] == [("served/index", "served", False)]
        refused = client.request("DELETE", "/api/collections/edge/served/index", json={"confirm": "served/index"})
        assert refused.status_code == 403 and (own / "index").is_dir()
    app.state.runs.close()


def test_an_unreachable_qdrant_server_is_reported_beside_the_edge_indexes(studio, workspace, tiny_run):
    _run_copy(tiny_run, workspace, "shop")
    studio.put("/api/settings", json={"qdrant_url": "http://127.0.0.1:1", "qdrant_api_key": "qdrant-secret-key-123"})
    listed = studio.get("/api/collections")
    assert listed.status_code == 200
    server = listed.json()["server"]
    assert server["url"] == "http://127.0.0.1:1" and server["collections"] == []
    assert server["error"].startswith("cannot list the collections of http://127.0.0.1:1") and "refused" in server["error"]
    assert "qdrant-secret-key-123" not in listed.text
    assert [c["name"] for c in listed.json()["edge"]] == ["runs/shop/index"]
    refused = studio.request("DELETE", "/api/collections/server/catalog", json={"confirm": "catalog"})
    assert refused.status_code == 502 and "did not delete" in refused.json()["detail"]
    assert studio.request("DELETE", "/api/collections/server/catalog", json={"confirm": "x"}).status_code == 400


def test_server_collections_through_qdrant_clients_own_engine(studio, workspace, monkeypatch):
    """The server listing and deletion against qdrant-client's local engine (the same client API a server answers;
    the real server: the test below, with SPARSEFIT_TEST_QDRANT_URL)."""
    import numpy as np
    import scipy.sparse as sp
    import yaml

    from sparsefit.index.client import ClientIndex
    from sparsefit.serving import indexes

    index = ClientIndex(location=":memory:", collection="shop", bm25=True, dense_size=3, modifier="idf")
    index.upsert(["a", "b"], sp.csr_matrix([[1.0, 0, 2.0], [0, 1.0, 1.0]]), dense=np.ones((2, 3), dtype="float32"))
    index.set_metadata({"model_name": "round 0"})
    asked = []
    monkeypatch.setattr(indexes, "_client", lambda url, key: asked.append((url, key)) or index._client)
    (workspace / "runs" / "made-it").mkdir(parents=True)
    (workspace / "runs" / "made-it" / "config.yaml").write_text(yaml.safe_dump({"qdrant_url": "http://qdrant:6333/", "collection": "shop"}))
    studio.put("/api/settings", json={"qdrant_url": "http://qdrant:6333", "qdrant_api_key": "qdrant-key-0123"})

    listed = studio.get("/api/collections")
    server = listed.json()["server"]
    assert server["error"] is None and asked[-1] == ("http://qdrant:6333", "qdrant-key-0123")
    assert "qdrant-key-0123" not in listed.text
    [shop] = server["collections"]
    assert (shop["name"], shop["points"], shop["model"], shop["kind"], shop["owner"]) == ("shop", 2, "round 0", "run", "made-it")
    assert shop["sparse_vectors"] == [{"name": "bm25", "modifier": "idf"}, {"name": "sparse", "modifier": "idf"}]
    assert shop["dense_vectors"] == [{"name": "dense", "size": 3, "distance": "Cosine"}]
    assert shop["size_bytes"] is None  # a server does not report it

    assert studio.request("DELETE", "/api/collections/server/shop", json={"confirm": "Shop"}).status_code == 400
    assert studio.request("DELETE", "/api/collections/server/nope", json={"confirm": "nope"}).status_code == 404
    done = studio.request("DELETE", "/api/collections/server/shop", json={"confirm": "shop"})
    assert done.status_code == 200 and done.json() == {"deleted": "shop", "engine": "server"}
    assert studio.get("/api/collections").json()["server"]["collections"] == []


@pytest.mark.skipif(not os.environ.get("SPARSEFIT_TEST_QDRANT_URL"), reason="set SPARSEFIT_TEST_QDRANT_URL to test a real Qdrant server")
def test_collections_of_a_qdrant_server_are_listed_and_deleted(studio):
    import secrets as random

    import scipy.sparse as sp

    from sparsefit.index import open_index

    url = os.environ["SPARSEFIT_TEST_QDRANT_URL"]
    name = f"sparsefit_test_{random.token_hex(4)}"
    with open_index(url=url, collection=name, api_key=os.environ.get("SPARSEFIT_QDRANT_API_KEY"), recreate=True) as index:
        index.upsert(["a", "b", "c"], sp.csr_matrix([[1.0, 0, 2.0], [0, 1.0, 1.0], [0, 0, 3.0]]))
    try:
        studio.put("/api/settings", json={"qdrant_url": url})
        server = studio.get("/api/collections").json()["server"]
        assert server["error"] is None, server
        found = next(c for c in server["collections"] if c["name"] == name)
        assert found["points"] == 3 and {v["name"] for v in found["sparse_vectors"]} >= {"sparse"}
        assert studio.request("DELETE", f"/api/collections/server/{name}", json={"confirm": "wrong"}).status_code == 400
        done = studio.request("DELETE", f"/api/collections/server/{name}", json={"confirm": name})
        assert done.status_code == 200, done.text
        assert name not in [c["name"] for c in studio.get("/api/collections").json()["server"]["collections"]]
        assert studio.request("DELETE", f"/api/collections/server/{name}", json={"confirm": name}).status_code == 404
    finally:
        from qdrant_client import QdrantClient

        QdrantClient(url=url, api_key=os.environ.get("SPARSEFIT_QDRANT_API_KEY")).delete_collection(name)


# -- Evaluate ---------------------------------------------------------------------------------------
def test_an_evaluation_request_is_checked_before_any_job_exists(studio, workspace, tiny_run, tmp_path):
    _run_copy(tiny_run, workspace, "one")
    _run_copy(tiny_run, workspace, "two")
    (workspace / "runs" / "half").mkdir()  # a run that has not finished
    catalog, judgments = str(EXAMPLES / "catalog.csv"), str(EXAMPLES / "judged_queries.csv")
    (tmp_path / "outside.csv").write_text("sku,title\n1,x\n")
    (tmp_path / "data" / "named").mkdir()  # a saved model that calls itself splade-tiny
    write_json(tmp_path / "data" / "named" / "sparsefit.json", {"name": "splade-tiny", "architecture": "splade"})
    ok = {"catalog": catalog, "judgments": judgments, "runs": ["one"]}
    refused = [
        ({"catalog": catalog, "runs": ["one"]}, 422, "judgments"),
        ({**ok, "catalog": str(tmp_path / "outside.csv")}, 403, "outside the folders"),
        ({**ok, "judgments": str(EXAMPLES / "missing.csv")}, 400, "does not exist"),
        ({**ok, "runs": []}, 400, "at least one model"),
        ({**ok, "runs": ["nope"]}, 404, "nope"),
        ({**ok, "runs": ["half"]}, 409, "has not finished"),
        ({**ok, "runs": [], "models": ["splade-tiny", "named"]}, 400, "evaluate them separately"),  # one name in the report
        ({**ok, "runs": ["one", "one"]}, 400, "listed twice"),
        ({**ok, "models": [" "]}, 400, "empty name"),
        ({**ok, "models": ["some-org/hub-model"]}, 400, "does not download"),
        ({**ok, "models": ["/etc"]}, 403, "base_model"),
        ({**ok, "split_run": "half"}, 409, "no query split"),
        ({**ok, "name": "../x"}, 400, "evaluation name"),
        ({**ok, "options": {"test_fraction": 1.5}}, 400, "test_fraction"),
        ({**ok, "options": {"retrieval": "dense"}}, 400, "retrieval"),
        ({**ok, "options": {"rm": "-rf"}}, 400, "rm"),
        ({**ok, "options": {"bm25": "maybe"}}, 400, "bm25"),
    ]
    for body, status, named in refused:
        response = studio.post("/api/evaluations", json=body)
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["detail"] and "\n" not in response.json()["detail"], (body, response.text)
    assert studio.get("/api/evaluations").json() == {"evaluations": []}
    assert not (workspace / "evaluations").exists() or not list((workspace / "evaluations").iterdir())
    assert studio.get("/api/evaluations/0123456789").status_code == 404
    assert studio.post("/api/evaluations/0123456789/cancel").status_code == 404
    assert studio.delete("/api/evaluations/0123456789").status_code == 404


def test_the_report_table_is_the_clis_cell_for_cell():
    """report_table(report.json) against the rich table `sparsefit evaluate` prints, with a hybrid reference row."""
    queries = {f"q{i}": f"query {i}" for i in range(6)}

    def system(name: str, kind: str, base: float) -> SystemResult:
        per_query = {q: {"ndcg@10": min(1.0, base + 0.07 * i), "mrr@10": base, "recall@10": 0.5, "recall@100": 1.0,
                         "p@10": 0.1} for i, q in enumerate(queries)}
        means = {m: sum(v[m] for v in per_query.values()) / len(per_query) for m in per_query["q0"]}
        return SystemResult(name, kind, per_query, means, seconds={"encode": 1.25, "search": 0.5})

    report = Report([system("bm25", "bm25", 0.4), system("splade-tiny", "encoder", 0.45),
                     system("hybrid (splade-tiny), fitted", "hybrid", 0.5), system("round 0", "encoder", 0.6)],
                    queries, catalog_size=1234, scheme="graded", relevant_threshold=1.0)
    table = report_table(json.loads(json.dumps(report.summary())))  # through JSON, as report.json is read
    cli = report.table()
    assert table["title"] == cli.title
    assert table["columns"] == [str(c.header) for c in cli.columns]
    assert table["rows"] == [[str(c._cells[i]) for c in cli.columns] for i in range(len(report.systems))]
    assert table["columns"][-2] == "p vs hybrid (splade-tiny)" and table["rows"][0][6:8] == ["1.000×", ""]


# -- Publish ----------------------------------------------------------------------------------------
def test_a_publish_request_is_checked_before_any_job_exists(studio, workspace, tiny_run, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    _run_copy(tiny_run, workspace, "shop")
    (workspace / "runs" / "half").mkdir()
    token = "hf_secretToken0123456789"
    refused = [
        ({"run": "nope", "archive": True}, 404, "nope"),
        ({"run": "half", "archive": True}, 409, "has not finished"),
        ({"run": "shop"}, 400, "nothing to do"),
        ({"run": "shop", "archive": True, "private": True}, 400, "apply to a hub repository"),
        ({"run": "shop", "archive": True, "token": token}, 400, "apply to a hub repository"),
        ({"run": "shop", "repo": "acme/shop"}, 400, "no hub token"),
        ({"run": "shop", "repo": "acme/shop", "endpoint": "http://elsewhere.example"}, 400, "needs its own token"),
        ({"run": "shop", "repo": "not a repo", "token": token}, 400, "is not ORG/NAME"),
        ({"run": "shop", "repo": "acme/shop", "token": token, "endpoint": "ftp://hub"}, 400, "http(s) URL"),
        ({"run": "shop", "repo": "acme/shop", "token": token, "revision": "refs/x"}, 400, "branch name"),
        ({"run": "shop", "archive": True, "license": "not a license"}, 400, "license"),
    ]
    for body, status, named in refused:
        response = studio.post("/api/publish", json=body)
        assert response.status_code == status, (body, response.text)
        assert named in response.json()["detail"] and token not in response.text, (body, response.text)
    assert studio.get("/api/publish").json() == {"jobs": []}
    assert token.encode() not in _everything_under(workspace)
    assert studio.get("/api/publish/0123456789/archive").status_code == 404
