"""The search service over a real (tiny) run: search, filters, offset, products, explain, rules, errors, security."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from sparsefit.cli import main
from sparsefit.evaluation.confidence import ConfidenceModel
from sparsefit.run import RunFolder
from sparsefit.serving.app import create_app, safe_name

TOKEN = "a-test-token-of-24-chars"


@contextmanager
def served(run: Path, **options):
    """A TestClient over ``create_app([run], **options)``; the app's runs are closed after."""
    app = create_app([run], **options)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    app.state.runs.close()


@pytest.fixture(scope="module")
def client(tiny_run):
    with served(tiny_run) as c:
        yield c


# A confidence model written by hand, whatever the tiny model ranks: p = 1 / (1 + exp(-z)) with
# z = 2 · score / top score - log(1 + rank) (the features score, gap, score / top, log(1 + rank)).
KNOWN_ECE = 0.0421
KNOWN_CONFIDENCE = ConfidenceModel(mean=[0.0] * 4, scale=[1.0] * 4, coef=[0.0, 0.0, 2.0, -1.0], intercept=0.0,
                                   report={"ece_cross_fitted": KNOWN_ECE})


def _known(hit: dict, top: float) -> float:
    return 1 / (1 + math.exp(-(2 * hit["score"] / top - math.log1p(hit["rank"]))))


@pytest.fixture(scope="module")
def confident_client(tiny_run, tmp_path_factory):
    """The tiny run with the hand-written confidence model: what the service reports no longer depends on
    whether the tiny model happens to find relevant products for its held-out queries."""
    run = Path(shutil.copytree(tiny_run, tmp_path_factory.mktemp("confident") / tiny_run.name))
    KNOWN_CONFIDENCE.save(run)
    RunFolder(run).confidence_problem.unlink(missing_ok=True)
    with served(run) as c:
        yield c


def test_health_names_the_run_and_its_confidence(confident_client, tiny_run):
    body = confident_client.get("/health").json()
    assert body["status"] == "ok"
    assert body["default_run"]["run"] == tiny_run.name and body["default_run"]["products"] == 400
    assert body["default_run"]["confidence"] == KNOWN_ECE and body["default_run"]["confidence_problem"] is None


def test_health_and_search_give_the_reason_when_a_run_has_no_confidence(tiny_run, tmp_path):
    problem = "cannot fit confidence: the held-out hits are all relevant or all not relevant"
    run = Path(shutil.copytree(tiny_run, tmp_path / tiny_run.name))
    folder = RunFolder(run)
    folder.confidence.unlink(missing_ok=True)
    folder.split.unlink()  # without held-out queries the service cannot try to fit it again: the reason stays
    folder.confidence_problem.write_text(problem + "\n", encoding="utf-8")
    with served(run) as c:
        health = c.get("/health").json()["default_run"]
        assert health["confidence"] is None and health["confidence_problem"] == problem
        body = c.post("/search", json={"query": "cordless drill", "limit": 5}).json()
        assert len(body["hits"]) == 5 and all(h["confidence"] is None for h in body["hits"])
        assert body["confidence_note"] == problem


def test_search_returns_ranked_hits_with_confidence_and_payload(confident_client):
    body = confident_client.post("/search", json={"query": "cordless drill", "limit": 10}).json()
    hits = body["hits"]
    assert len(hits) == 10 and [h["rank"] for h in hits] == list(range(1, 11))
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert body["confidence_note"] is None
    assert [h["confidence"] for h in hits] == pytest.approx([_known(h, scores[0]) for h in hits], abs=1e-3)
    assert len(set(h["confidence"] for h in hits)) > 5  # the values tell the hits apart
    assert {"title", "brand", "price"} <= set(hits[0]["payload"])
    # A second page keeps the ranks of the whole list (confidence depends on the rank), ...
    page2 = confident_client.post("/search", json={"query": "cordless drill", "limit": 5, "offset": 5}).json()["hits"]
    assert [h["confidence"] for h in page2] == [h["confidence"] for h in hits[5:]]
    # ... and a filtered list, which the model was not fitted on, gets none, and the reason.
    filtered = confident_client.post("/search", json={"query": "drill", "filter": {"in_stock": True}}).json()
    assert filtered["hits"] and all(h["confidence"] is None for h in filtered["hits"])
    assert "unfiltered" in filtered["confidence_note"]


def test_filters_and_offset(client):
    brand = client.post("/search", json={"query": "drill", "limit": 50, "filter": {"brand": "Boltworth"}}).json()["hits"]
    assert brand and all(h["payload"]["brand"] == "Boltworth" for h in brand)
    cheap = client.post("/search", json={"query": "drill", "limit": 50, "filter": {"price": {"lt": 50}}}).json()["hits"]
    assert cheap and all(h["payload"]["price"] < 50 for h in cheap)
    ten = client.post("/search", json={"query": "paint", "limit": 10}).json()["hits"]
    page2 = client.post("/search", json={"query": "paint", "limit": 5, "offset": 5}).json()["hits"]
    assert [h["product_id"] for h in page2] == [h["product_id"] for h in ten[5:]]
    assert [h["rank"] for h in page2] == [6, 7, 8, 9, 10]


def test_retrieval_modes_search_the_runs_named_vectors(client, tiny_run):
    """bm25 is Qdrant's BM25 alone (the same ranking as the index gives it), hybrid fuses it with the model in one
    query with the run's fitted fusion, and each says what it did."""
    from sparsefit.index import IndexLocation

    sparse = client.post("/search", json={"query": "cordless drill", "limit": 10}).json()
    bm25 = client.post("/search", json={"query": "cordless drill", "limit": 10, "retrieval": "bm25"}).json()
    hybrid = client.post("/search", json={"query": "cordless drill", "limit": 10, "retrieval": "hybrid"}).json()
    assert (sparse["retrieval"], bm25["retrieval"], hybrid["retrieval"]) == ("sparse", "bm25", "hybrid")
    listed = {run["name"]: run for run in client.get("/api/runs").json()["runs"]}
    assert listed[tiny_run.name]["retrievals"] == ["sparse", "bm25", "hybrid"]  # no dense vectors: the studio offers these
    fitted = json.loads(RunFolder(tiny_run).fusion.read_text())["tuned"]
    assert hybrid["fusion"].startswith(fitted["method"]) and sparse["fusion"] is None
    assert all("drill" in h["payload"]["title"].lower() for h in bm25["hits"][:5])  # BM25 matches the words
    assert hybrid["hits"] and hybrid["confidence_note"].startswith("confidence is calibrated on the model's own scores")
    assert {h["product_id"] for h in hybrid["hits"]} <= {h["product_id"] for h in client.post(
        "/search", json={"query": "cordless drill", "limit": 100}).json()["hits"]} | {h["product_id"] for h in client.post(
        "/search", json={"query": "cordless drill", "limit": 100, "retrieval": "bm25"}).json()["hits"]}


def test_a_boost_multiplies_the_score_by_its_payload_fields(client):
    plain = client.post("/search", json={"query": "drill", "limit": 200}).json()["hits"]  # the depth a boost rescores
    boosted = client.post("/search", json={"query": "drill", "limit": 10, "boost": {"in_stock": 2.0, "price": 0.001}}).json()
    assert boosted["boost"] == {"in_stock": 2.0, "price": 0.001}
    score = {h["product_id"]: h["score"] * (1 + 2.0 * h["payload"]["in_stock"] + 0.001 * h["payload"]["price"]) for h in plain}
    expected = sorted(score.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [h["product_id"] for h in boosted["hits"]] == [pid for pid, _ in expected]
    assert [h["score"] for h in boosted["hits"]] == pytest.approx([s for _, s in expected], rel=1e-3)
    # weight -1 zeroes the in-stock products' scores: the out-of-stock ones the search found come first
    demoted = client.post("/search", json={"query": "drill", "limit": 10, "boost": {"in_stock": -1}}).json()["hits"]
    out_of_stock = [h["product_id"] for h in plain if not h["payload"]["in_stock"]][:10]
    assert out_of_stock and [h["product_id"] for h in demoted][:len(out_of_stock)] == out_of_stock


def test_feedback_moves_the_clicked_product_up(tiny_run, tmp_path):
    """With the coefficients the run fitted (here written by hand: c = 1), a click pulls its product up."""
    from sparsefit.index import FeedbackStrategy

    run = Path(shutil.copytree(tiny_run, tmp_path / tiny_run.name))
    RunFolder(run).feedback.write_text(json.dumps({"strategy": FeedbackStrategy(c=1.0).to_json(), "test": {}}))
    with served(run) as client:
        _clicked_product_moves_up(client)


def _clicked_product_moves_up(client):
    first = client.post("/search", json={"query": "drill", "limit": 10}).json()["hits"]
    clicked, skipped = first[7]["product_id"], first[0]["product_id"]
    again = client.post("/search", json={"query": "drill", "limit": 10, "feedback": [
        {"product_id": clicked, "score": 1}, {"product_id": skipped, "score": 0}]}).json()
    ranks = [h["product_id"] for h in again["hits"]]
    assert again["feedback"] == 2
    assert clicked in ranks and ranks.index(clicked) < 7
    none = client.post("/search", json={"query": "drill", "limit": 10, "feedback": []}).json()["hits"]
    assert [h["product_id"] for h in none] == [h["product_id"] for h in first]


@pytest.mark.parametrize("body, status, fragment", [
    ({"query": ""}, 400, "query is empty"),
    ({"query": "   "}, 400, "query is empty"),
    ({"query": "drill", "limit": 0}, 422, "limit"),
    ({"query": "drill", "limit": "ten"}, 422, "limit"),
    ({"query": "drill", "offset": -1}, 422, "offset"),
    ({"limit": 3}, 422, "query"),
    ({"query": "drill", "filter": {"price": {"lt": "cheap"}}}, 400, "finite number"),
    ({"query": "drill", "filter": {"price": {"about": 5}}}, 400, "price"),
    ({"query": "drill", "filter": {"brand": {"nested": {"deep": [1]}}}}, 400, "brand"),
    ({"query": "drill", "filter": "brand=Acme"}, 422, "filter"),
    ({"query": "drill", "run": "nope"}, 404, "no run named"),
    ({"query": "x" * 2000}, 400, "2000 characters"),
    ({"query": "drill", "retrieval": "semantic"}, 422, "retrieval"),
    ({"query": "drill", "retrieval": "dense"}, 400, "no dense vectors (the run was trained without --dense)"),
    ({"query": "drill", "retrieval": "hybrid-dense"}, 400, "use one of sparse, bm25, hybrid"),
    ({"query": "drill", "feedback": [{"product_id": "NOPE", "score": 1}]}, 400, "not in the index: NOPE"),
    ({"query": "drill", "feedback": [{"product_id": "PT-0005"}]}, 422, "score"),
    ({"query": "drill", "feedback": [{"product_id": "PT-0005", "score": "yes"}]}, 422, "score"),
    ({"query": "drill", "feedback": [{"product_id": "PT-0005", "score": 1}], "retrieval": "bm25"}, 400, "model's vectors"),
    ({"query": "drill", "feedback": [{"product_id": "PT-0005", "score": 1}] * 101}, 422, "feedback"),
    ({"query": "drill", "boost": {"colour": 1}}, 400, "no product has the payload field 'colour'"),
    ({"query": "drill", "boost": {"brand": 1}}, 400, "numeric or true/false fields: in_stock, price"),
    ({"query": "drill", "boost": {"price": "high"}}, 400, "must be a number"),
    ({"query": "drill", "boost": "in_stock"}, 422, "boost"),
])
def test_bad_requests_get_a_clear_4xx_never_500(client, body, status, fragment):
    response = client.post("/search", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_malformed_json_is_a_4xx(client):
    response = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_products_endpoint(client):
    assert client.get("/products/PT-0005").json()["payload"]["brand"] == "Torvane"
    missing = client.get("/products/NOPE-1")
    assert missing.status_code == 404 and "NOPE-1" in missing.json()["detail"]


def test_explain_shows_both_models_and_the_shared_terms_add_up_to_the_score(client):
    hits = client.post("/search", json={"query": "cordless drill", "limit": 400}).json()["hits"]
    hit = next(h for h in hits if h["product_id"] == "PT-0005")  # the tiny model's ranking is noise; pick a drill
    body = client.post("/explain", json={"query": "cordless drill", "product_id": hit["product_id"], "top_k": 200}).json()
    assert set(body["models"]) == {"tuned", "base"}
    tuned, base = body["models"]["tuned"], body["models"]["base"]
    assert base["score"] != tuned["score"]  # the base side is the untrained tiny BERT, not the tuned model again
    assert tuned["score"] == pytest.approx(hit["score"], rel=1e-3)
    assert sum(t["contribution"] for t in tuned["shared_terms"]) == pytest.approx(tuned["score"], rel=1e-3)
    assert all(t["term"] in ("cordless", "drill") for t in tuned["query"]["terms"] if t["in_text"])
    assert all(not t["in_text"] for t in tuned["product"]["expansion"])
    assert "drill" in body["product_text"].lower()
    assert client.post("/explain", json={"query": "drill", "product_id": "NOPE"}).status_code == 404


def test_rules_are_managed_through_the_api(client):
    added = client.post("/rules", json={"when": "cordless drill", "exclude": "paint"})
    assert added.status_code == 201
    rule_id = added.json()["id"]
    assert [r["id"] for r in client.get("/rules").json()["rules"]] == [rule_id]
    fired = client.post("/search", json={"query": "cordless drill", "limit": 5}).json()["rules_fired"]
    assert fired and fired[0]["id"] == rule_id and fired[0]["excluded_products"] > 0
    assert client.post("/rules", json={"when": "cordless drill", "exclude": "paint"}).status_code == 400  # duplicate
    assert client.post("/rules", json={"when": "a", "exclude": "b", "when_threshold": 2}).status_code == 422
    assert client.delete(f"/rules/{rule_id}").status_code == 200
    assert client.delete(f"/rules/{rule_id}").status_code == 404
    assert client.get("/rules").json()["rules"] == []


def test_openapi_schema_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/products/{product_id}", "/explain", "/health", "/rules"} <= set(paths)


def test_a_token_guards_every_endpoint(tiny_run, tmp_path):
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path], token=TOKEN)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        for method, path in [("get", "/health"), ("post", "/search"), ("get", "/api/runs"), ("get", "/studio"),
                             ("get", "/api/files"), ("get", "/openapi.json"), ("get", "/docs")]:
            assert getattr(c, method)(path).status_code == 401, path
        assert c.get("/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        page = c.get(f"/studio?token={TOKEN}")
        assert page.status_code == 200 and "sparsefit_token" in page.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200  # the cookie now carries the token
    app.state.runs.close()


def test_studio_form_defaults_are_the_settings_defaults(tmp_path, monkeypatch):
    from sparsefit.config import load_settings
    from sparsefit.serving.job_options import OPTIONS

    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        training = c.get("/api/defaults").json()["training"]
    settings = load_settings()
    assert set(training) == set(OPTIONS)
    assert training == {key: getattr(settings, key) for key in OPTIONS}
    monkeypatch.setenv("SPARSEFIT_ROUNDS", "5")  # the environment a job's `sparsefit train` also reads
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/defaults").json()["training"]["rounds"] == 5


def test_studio_paths_and_uploads_stay_inside_their_roots(tiny_run, tmp_path):
    allowed = tmp_path / "data"
    allowed.mkdir()
    (allowed / "catalog.csv").write_text("sku,title\nA1,Drill\n")
    outside = tmp_path / "secret.csv"
    outside.write_text("sku,title\nB1,Saw\n")
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[allowed], max_upload_mb=1)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        names = [f["name"] for f in c.get("/api/files").json()["files"]]
        assert names == ["catalog.csv"]
        for path in (str(outside), str(allowed / ".." / "secret.csv"), "/etc/passwd"):
            response = c.post("/api/jobs", json={"catalog": path})
            assert response.status_code == 403 and "outside the folders the studio may read" in response.json()["detail"], path
        assert c.post("/api/jobs", json={"catalog": str(allowed / "missing.csv")}).status_code == 400
        bad_option = c.post("/api/jobs", json={"catalog": str(allowed / "catalog.csv"), "options": {"rm": "-rf"}})
        assert bad_option.status_code == 400 and "unknown training option" in bad_option.json()["detail"]
        bad_name = c.post("/api/jobs", json={"catalog": str(allowed / "catalog.csv"), "name": "../escape"})
        assert bad_name.status_code == 400
        up = c.post("/api/uploads", files={"file": ("../../evil.csv", b"sku,title\nC1,Hammer\n")}).json()
        assert up["name"] == "evil.csv"
        assert (tmp_path / "ws" / "uploads").resolve() in Path(up["path"]).resolve().parents
        big = c.post("/api/uploads", files={"file": ("big.csv", b"x" * (1024 * 1024 + 1))})
        assert big.status_code == 413 and "1 MB" in big.json()["detail"]
        assert not list((tmp_path / "ws" / "uploads").glob("*big.csv"))
        assert c.post("/api/uploads", files={"file": ("notes.exe", b"MZ")}).status_code == 400
        assert c.post("/search", json={"query": "drill"}).status_code == 400  # no run served, none named


def test_safe_name():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\x.csv") == "x.csv"
    assert safe_name("my catalog (1).csv") == "my_catalog__1_.csv"


def test_serving_beyond_loopback_needs_a_token(tiny_run, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tiny_run), "--host", "0.0.0.0"])
    assert exc.value.code == 2
    out = capsys.readouterr().err
    assert "without a token" in out and "Traceback" not in out


def test_serving_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path)])
    assert exc.value.code == 2
    assert "not a finished training run" in capsys.readouterr().err


def test_run_detail_for_the_studio(client, tiny_run):
    detail = client.get(f"/api/runs/{tiny_run.name}").json()
    assert detail["status"] == "finished" and detail["final"] == "round 0"
    assert [s["name"] for s in detail["systems"]][0] == "bm25"
    assert detail["losses"]["0"] and detail["live"]["finished"] is True
    summary = client.get("/api/runs").json()["runs"][0]
    assert summary["final_ndcg"] == pytest.approx(json.loads((tiny_run / "rounds/0/metrics.json").read_text())[0]["mean"]["ndcg@10"])


@pytest.mark.slow  # a studio job: `sparsefit train` in a child process
def test_a_studio_job_trains_and_cancelling_it_keeps_finished_stages(tiny_model, tmp_path):
    import time

    examples = Path(__file__).resolve().parents[2] / "examples"
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[examples, tiny_model])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        # A studio started with SIGINT ignored (a script's `nohup sparsefit studio &`) must still cancel its jobs.
        inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            job = c.post("/api/jobs", json={"catalog": str(examples / "catalog.csv"), "judgments": str(examples / "judged_queries.csv"),
                                            "name": "cancel-me", "options": {"base_model": str(tiny_model), "rounds": 3,
                                                                             "epochs": 20, "mining_epochs": 0.5,
                                                                             "train_batch_size": 8, "search_posting_cap": 5}})
        finally:
            signal.signal(signal.SIGINT, inherited)
        assert job.status_code == 201, job.text
        job_id = job.json()["id"]
        try:
            assert [j["id"] for j in c.get("/api/jobs").json()["jobs"]] == [job_id]
            deadline = time.time() + 180
            while not (c.get("/api/runs/cancel-me").json().get("live") or {}).get("losses"):  # training has begun (404 before)
                assert c.get(f"/api/jobs/{job_id}").json()["status"] == "running", c.get(f"/api/jobs/{job_id}").json()["log"]
                assert time.time() < deadline
                time.sleep(0.5)
            c.post(f"/api/jobs/{job_id}/cancel")
            while (state := c.get(f"/api/jobs/{job_id}").json())["status"] == "running":
                assert time.time() < deadline
                time.sleep(0.5)
        finally:  # never leave a training process behind
            try:
                os.killpg(job.json()["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert state["status"] == "cancelled" and state["returncode"] == 130
        config = yaml.safe_load((tmp_path / "ws" / "runs" / "cancel-me" / "config.yaml").read_text())
        assert (config["epochs"], config["mining_epochs"], config["train_batch_size"], config["search_posting_cap"]) == (20, 0.5, 8, 5)  # the options reached the run
        assert any("--resume" in line for line in state["log"])
        detail = c.get("/api/runs/cancel-me").json()
        assert detail["status"] == "incomplete" and "baselines" in detail["done"] and "export" not in detail["done"]
        assert c.post("/search", json={"query": "drill", "run": "cancel-me"}).status_code == 409
