"""A run trained with ``--dense minilm-l6`` serves five retrieval modes: the dense model alone and the three-way
hybrid (the model, Qdrant's BM25 and the dense model fused in one Qdrant query with the run's fitted weights)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.config import load_settings
from sparsefit.pipeline import finetune
from sparsefit.run import RunFolder
from sparsefit.serving.app import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.slow  # trains a run and loads MiniLM


@pytest.fixture(scope="module")
def dense_run(tiny_model, tmp_path_factory) -> Path:
    settings = load_settings(base_model=str(tiny_model), rounds=1, train_batch_size=16, learning_rate=1e-3,
                             dense="minilm-l6", output=tmp_path_factory.mktemp("dense") / "run")
    return finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", settings, show_progress=False)


@pytest.fixture(scope="module")
def client(dense_run):
    app = create_app([dense_run])
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    app.state.runs.close()


def _search(client, **body) -> dict:
    response = client.post("/search", json={"query": "cordless drill", "limit": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_dense_run_serves_dense_and_three_way_hybrid_search(client, dense_run):
    from sparsefit.serving.service import SearchService

    service = SearchService.open(dense_run, calibrate=False)
    try:
        assert service.info()["retrievals"] == ["sparse", "bm25", "dense", "hybrid", "hybrid-dense"]
        assert service.info()["dense"] == "minilm-l6"
    finally:
        service.close()
    listed = {run["name"]: run for run in client.get("/api/runs").json()["runs"]}
    assert listed[dense_run.name]["retrievals"] == ["sparse", "bm25", "dense", "hybrid", "hybrid-dense"]  # the studio's choices
    dense = _search(client, retrieval="dense")
    # MiniLM, untuned, still puts drills first for a drill query (the tiny BERT could not).
    assert dense["retrieval"] == "dense" and dense["fusion"] is None
    assert all("drill" in h["payload"]["title"].lower() for h in dense["hits"][:3]), dense["hits"][:3]
    fitted = json.loads(RunFolder(dense_run).fusion.read_text())
    assert set(fitted) == {"base", "base+dense", "tuned", "tuned+dense"}
    three = _search(client, retrieval="hybrid-dense")
    two = _search(client, retrieval="hybrid")
    assert three["fusion"].startswith(fitted["tuned+dense"]["method"]) and len(fitted["tuned+dense"]["weights"]) == 3
    assert two["fusion"].startswith(fitted["tuned"]["method"]) and len(fitted["tuned"]["weights"]) == 2
    # Every three-way hit comes from one of its legs' own top lists.
    legs = {h["product_id"] for mode in ("sparse", "bm25", "dense") for h in _search(client, retrieval=mode, limit=100)["hits"]}
    assert three["hits"] and {h["product_id"] for h in three["hits"]} <= legs
    # Feedback works on the model's leg of the three-way query, not on the dense model alone.
    first = three["hits"][0]["product_id"]
    assert _search(client, retrieval="hybrid-dense", feedback=[{"product_id": first, "score": 1}])["feedback"] == 1
    refused = client.post("/search", json={"query": "drill", "retrieval": "dense", "feedback": [{"product_id": first, "score": 1}]})
    assert refused.status_code == 400 and "model's vectors" in refused.json()["detail"]


def test_the_cli_searches_a_dense_run_densely(dense_run, tmp_path, capsys):
    from sparsefit.cli import main

    run = shutil.copytree(dense_run, tmp_path / "run")  # the module's service holds the run's index open
    main(["search", str(run), "cordless drill", "--retrieval", "dense", "--json", "--limit", "3"])  # returns: exit 0
    result = json.loads(capsys.readouterr().out)
    assert result["retrieval"] == "dense" and len(result["hits"]) == 3
