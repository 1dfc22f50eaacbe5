"""The service and the studio against hostile and careless input (the hardening issue, items 2, 3, 7, 8, 10,
11, 12, 15, 16): each test fails on the code before it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.cli import main
from sparsefit.errors import SparsefitError
from sparsefit.files import atomic_folder, read_json, write_json
from sparsefit.serving.app import create_app
from tests.helpers import together

LOCAL = "http://127.0.0.1"
TOKEN = "hardening-token-0123456789"


@pytest.fixture(scope="module")
def client(tiny_run):
    app = create_app([tiny_run])
    with TestClient(app, base_url=LOCAL) as c:
        yield c
    app.state.runs.close()


@pytest.fixture
def own_run(tiny_run, tmp_path) -> Path:
    """A copy of the run: its Edge index can be opened while the module's client holds the original."""
    return Path(shutil.copytree(tiny_run, tmp_path / "own-run"))


def _first_hit(client) -> str:
    return client.post("/search", json={"query": "drill"}).json()["hits"][0]["product_id"]


# -- 2: model loading under concurrency ----------------------------------------------------------------
def test_parallel_first_explain_calls_all_answer_and_later_ones_too(own_run):
    app = create_app([own_run])  # a fresh service: the base model is not loaded yet
    with TestClient(app, base_url=LOCAL) as c:
        product = _first_hit(c)
        responses = together(10, lambda _: c.post("/explain", json={"query": "cordless drill", "product_id": product}))
        assert [getattr(r, "status_code", r) for r in responses] == [200] * 10
        later = c.post("/explain", json={"query": "hammer", "product_id": product})
        assert later.status_code == 200 and later.json()["models"]["base"]["score"] >= 0
    app.state.runs.close()


# -- 3: host, origin and security headers ---------------------------------------------------------------
def test_without_a_token_only_loopback_host_names_are_served(client):
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        response = client.get("/health", headers={"host": host})
        assert response.status_code == 400 and "not served" in response.json()["detail"], host


def test_a_token_lets_other_host_names_through_to_the_token_check(own_run):
    app = create_app([own_run], token=TOKEN)
    with TestClient(app, base_url="http://search.example.com") as c:
        assert c.get("/health").status_code == 401
        ok = c.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
    app.state.runs.close()


def test_a_foreign_origin_cannot_change_anything(client):
    product = _first_hit(client)
    foreign = {"origin": "https://evil.example"}
    assert client.post("/search", json={"query": "drill"}, headers=foreign).status_code == 403
    assert client.post("/rules", json={"when": "a drill", "exclude": "a saw"}, headers=foreign).status_code == 403
    assert client.post("/explain", json={"query": "drill", "product_id": product}, headers={"origin": "null"}).status_code == 403
    assert client.get("/rules").json()["rules"] == []  # nothing was added
    assert client.post("/search", json={"query": "drill"}, headers={"origin": "http://127.0.0.1"}).status_code == 200
    assert client.get("/health", headers=foreign).status_code == 200  # reading is not refused by Origin


def test_a_foreign_page_cannot_upload_to_the_studio(tmp_path):
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path])
    with TestClient(app, base_url=LOCAL) as c:
        response = c.post("/api/uploads", files={"file": ("c.csv", b"sku,title\nA,B\n", "text/csv")},
                          headers={"origin": "http://attacker.test"})
        assert response.status_code == 403
        assert not (tmp_path / "ws" / "uploads").exists() or not list((tmp_path / "ws" / "uploads").iterdir())
        same = c.post("/api/uploads", files={"file": ("c.csv", b"sku,title\nA,B\n", "text/csv")}, headers={"origin": LOCAL})
        assert same.status_code == 200


def test_every_response_carries_the_security_headers(tmp_path):
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path])
    with TestClient(app, base_url=LOCAL) as c:
        for path in ("/health", "/studio", "/api/files", "/nowhere"):
            headers = c.get(path).headers
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert "script-src" not in headers["content-security-policy"]  # default-src 'self': no inline script
            assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff", path


# -- 7: rules are bounded and cheap to add -----------------------------------------------------------
def test_rule_anchors_are_capped(client):
    huge = client.post("/rules", json={"when": "x" * 1_000_000, "exclude": "saw"})
    assert huge.status_code == 422 and "200" in huge.json()["detail"]
    assert client.post("/rules", json={"when": "y" * 201, "exclude": "saw"}).status_code == 422
    assert client.get("/rules").json()["rules"] == []


def test_adding_a_rule_encodes_only_its_own_anchors(own_run, monkeypatch):
    from sparsefit.serving import rules as rules_module
    from sparsefit.serving.service import SearchService

    service = SearchService.open(own_run, calibrate=False)
    try:
        added = [service.add_rule(f"when {i}", f"exclude {i}") for i in range(4)]
        encoded: list[str] = []
        original = service.encoder.encode_queries
        monkeypatch.setattr(service.encoder, "encode_queries",
                            lambda texts, **kw: (encoded.extend(texts), original(texts, **kw))[1])
        service.add_rule("cordless drill", "drill bit set")
        assert encoded == ["cordless drill", "drill bit set"]  # not the four rules before it
        service.remove_rule(added[1].id)
        fresh = rules_module.RuleBook(service.index, service.encoder)  # re-encodes every stored rule
        assert [r.id for r in fresh.rules] == [r.id for r in service.rules.rules]
        assert abs(fresh._when - service.rules._when).max() < 1e-6
        assert abs(fresh._exclude - service.rules._exclude).max() < 1e-6
        monkeypatch.setattr(rules_module, "MAX_RULES", len(service.rules.rules))
        with pytest.raises(SparsefitError, match="the most it keeps"):
            service.add_rule("one more", "rule")
        for rule in service.rules.list():
            service.remove_rule(rule.id)
    finally:
        service.close()


# -- 8: atomic model folders; serve needs a finished export -------------------------------------------
def test_atomic_folder_keeps_the_old_folder_on_error_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (target / "weights").read_text() == "old"
    with atomic_folder(target) as tmp:
        (tmp / "other").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_exchange_paths_swaps_two_folders_in_one_step(tmp_path):
    from sparsefit.files import exchange_paths

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y").write_text("y")
    assert exchange_paths(tmp_path / "a", tmp_path / "b")  # Linux: renameat2(RENAME_EXCHANGE)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["y"] and [p.name for p in (tmp_path / "b").iterdir()] == ["x"]


def test_serving_a_run_whose_export_is_not_done_is_refused(own_run, capsys):
    copy = own_run
    state = read_json(copy / "state.json")
    write_json(copy / "state.json", {"done": [s for s in state["done"] if s != "export"]})
    with pytest.raises(SystemExit) as exit_:
        main(["search", str(copy), "drill"])
    assert exit_.value.code == 2
    assert "has not finished exporting" in capsys.readouterr().err


# -- 10: request sizes ------------------------------------------------------------------------------------
def test_oversized_bodies_are_refused_before_they_are_read(client, tmp_path):
    big = json.dumps({"query": "drill", "filter": {"brand": ["x" * 100] * 20_000}})
    assert len(big) > 1 << 20
    response = client.post("/search", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    def chunks():
        yield b'{"query": "drill"}'

    chunked = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 411
    # a small Content-Length next to Transfer-Encoding: the HTTP parser would read the chunked body, unbounded
    both = client.post("/search", content=b'{"query": "drill"}',
                       headers={"content-type": "application/json", "transfer-encoding": "chunked"})
    assert both.status_code == 411


def test_malformed_host_headers_are_not_taken_for_loopback():
    from sparsefit.serving.guard import host_name

    assert [host_name(h) for h in ("127.0.0.1:8000", "[::1]:80", "LOCALHOST")] == ["127.0.0.1", "::1", "localhost"]
    assert [host_name(h) for h in ("[::1]evil.example", "localhost:80x", "::1", "a:b:c")] == ["", "", "", ""]


def test_an_upload_over_the_limit_is_refused_on_its_declared_length(tmp_path):
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path], max_upload_mb=1)
    with TestClient(app, base_url=LOCAL) as c:
        response = c.post("/api/uploads", files={"file": ("big.csv", b"a" * (3 << 20), "text/csv")})
        assert response.status_code == 413
    assert not (tmp_path / "ws" / "uploads").exists() or not list((tmp_path / "ws" / "uploads").iterdir())


@pytest.mark.parametrize("filter_, fragment", [
    ({"brand": [f"b{i}" for i in range(1001)]}, "at most 1,000"),
    ({"$exclude_ids": [f"id{i}" for i in range(10_001)]}, "at most 10,000"),
    ({f"k{i}": "v" for i in range(65)}, "at most 64"),
])
def test_filter_lists_are_capped(client, filter_, fragment):
    response = client.post("/search", json={"query": "drill", "filter": filter_})
    assert response.status_code == 400 and fragment in response.json()["detail"]


# -- 11: odd input that once gave 500s -----------------------------------------------------------------
def test_a_non_ascii_token_is_a_401_not_a_500(own_run):
    app = create_app([own_run], token=TOKEN)
    with TestClient(app, base_url=LOCAL) as c:
        response = c.get("/health", headers={"Authorization": "Bearer tökén-ünïcode-0123456789".encode()})
        assert response.status_code == 401
        assert c.get("/health?token=%C3%A9%00").status_code == 401
    app.state.runs.close()


def test_a_nul_byte_in_a_catalog_path_is_a_400(tmp_path):
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path])
    with TestClient(app, base_url=LOCAL) as c:
        response = c.post("/api/jobs", json={"catalog": str(tmp_path / "cat\x00.csv")})
        assert response.status_code == 400 and "not a valid path" in response.json()["detail"]
        outside = c.post("/api/jobs", json={"catalog": "/etc/passwd"})
        assert outside.status_code == 403 and str(tmp_path) not in outside.json()["detail"]
        (tmp_path / "c.csv").write_text("sku,title\nA,B\n")
        for base in ("~nosuchuser/m", "a\x00b", "x" * 300):  # each was a 500 from path resolution
            bad = c.post("/api/jobs", json={"catalog": str(tmp_path / "c.csv"), "options": {"base_model": base}})
            assert bad.status_code in (400, 403), (base, bad.text)
        newline = c.post("/api/jobs", json={"catalog": str(tmp_path / "c.csv"), "name": "abc\n"})
        assert newline.status_code == 400 and not (tmp_path / "ws" / "runs" / "abc\n").exists()


# -- 12: the file list --------------------------------------------------------------------------------------
def test_the_file_list_stops_at_its_cap_and_skips_symlinks(tmp_path):
    root = tmp_path / "data"
    (root / "deep").mkdir(parents=True)
    for i in range(520):
        (root / "deep" / f"c{i:03}.csv").write_text("sku,title\n")
    (root / "a.csv").write_text("sku,title\n")
    (root / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    (tmp_path / "elsewhere.csv").write_text("secret\n")
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[root])
    with TestClient(app, base_url=LOCAL) as c:
        body = c.get("/api/files").json()
    names = [f["name"] for f in body["files"]]
    assert len(names) == 500 and body["truncated"] is True
    assert names[0] == "a.csv" and "link.csv" not in names and all(not n.startswith("/") for n in names)


def test_the_file_list_leaves_out_the_studios_own_runs_when_the_workspace_is_inside_the_root(tmp_path):
    (tmp_path / "catalog.csv").write_text("sku,title\n")
    for folder in ("runs/r1/model", "jobs"):
        (tmp_path / "ws" / folder).mkdir(parents=True)
    (tmp_path / "ws" / "runs" / "r1" / "model" / "config.json").write_text("{}")
    (tmp_path / "ws" / "jobs" / "0123456789.json").write_text("{}")
    app = create_app([], workspace=tmp_path / "ws", allowed_roots=[tmp_path, tmp_path])
    with TestClient(app, base_url=LOCAL) as c:
        assert [f["name"] for f in c.get("/api/files").json()["files"]] == ["catalog.csv"]


# -- 15: filters on keys no product has ----------------------------------------------------------------
def test_a_filter_on_an_unknown_payload_key_is_a_400_naming_the_known_keys(client):
    response = client.post("/search", json={"query": "drill", "filter": {"nosuchfield": "x"}})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "nosuchfield" in detail and "brand" in detail and "price" in detail
    known = client.post("/search", json={"query": "drill", "filter": {"brand": "No Such Brand"}})
    assert known.status_code == 200 and known.json()["hits"] == []
    quoted = client.post("/search", json={"query": "drill", "filter": {'"in_stock"': True}})  # Qdrant's quoted key form
    assert quoted.status_code == 200 and quoted.json()["hits"]


def test_the_cli_search_refuses_an_unknown_filter_key(own_run, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", str(own_run), "drill", "--filter", '{"colour": "red"}'])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "colour" in err and "brand" in err and "Traceback" not in err


# -- 16: confidence straight after training ---------------------------------------------------------------
@pytest.mark.slow
def test_search_right_after_train_shows_confidence_but_not_on_filtered_lists(tmp_path, capsys):
    examples = Path(__file__).resolve().parents[2] / "examples"
    run = tmp_path / "run"
    main(["train", str(examples / "catalog.csv"), "--judgments", str(examples / "judged_queries.csv"),
          "--rounds", "1", "--output", str(run)])
    report = read_json(run / "confidence.json")["report"]
    assert report["queries"] == len(read_json(run / "split.json")["test"])  # fitted on the held-out queries only
    capsys.readouterr()
    main(["search", str(run), "cordless drill", "--json"])
    plain = json.loads(capsys.readouterr().out)
    confidences = [h["confidence"] for h in plain["hits"]]
    assert confidences and all(0.0 < c < 1.0 for c in confidences)
    assert plain["confidence_note"] is None
    main(["search", str(run), "cordless drill", "--json", "--filter", '{"in_stock": true}'])
    filtered = json.loads(capsys.readouterr().out)
    assert filtered["hits"] and all(h["confidence"] is None for h in filtered["hits"])
    assert "unfiltered" in filtered["confidence_note"]



# -- 14: a resumed run keeps its settings, also against the environment ----------------------------------
def test_resume_refuses_an_environment_that_would_change_the_run(own_run, monkeypatch, capsys):
    monkeypatch.setenv("SPARSEFIT_ROUNDS", "5")
    monkeypatch.setenv("SPARSEFIT_MAX_JOBS", "3")  # how it runs, not what it computes: allowed
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--resume", str(own_run)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "SPARSEFIT_ROUNDS" in err and "MAX_JOBS" not in err
    assert read_json(own_run / "state.json")["done"][-1] == "export"  # untouched
