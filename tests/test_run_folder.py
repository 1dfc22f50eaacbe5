"""The run folder's one owner: file and stage names, the systems with their roles, damaged files named."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sparsefit.errors import SparsefitError
from sparsefit.files import write_json
from sparsefit.run import RunFolder, RunState, exported, finished_stages
from tests.helpers import together


def _metrics(name: str, ndcg: float) -> dict:
    return {"name": name, "kind": "x", "mean": {"ndcg@10": ndcg}, "seconds": {}}


@pytest.fixture
def run(tmp_path) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    write_json(run.metrics(run.baselines), [_metrics("bm25", 0.5), _metrics("base (splade-tiny)", 0.4)])
    for n, ndcg in ((0, 0.6), (1, 0.62), (10, 0.7)):  # round 10 sorts after round 1, not before 2
        write_json(run.metrics(run.round(n)), [_metrics(f"round {n}", ndcg)])
    write_json(run.metrics(run.average), [_metrics("average of rounds 0–10", 0.65)])
    return run


def test_systems_come_in_stage_order_with_their_roles_and_ratio(run):
    systems = run.systems()
    assert [(s["name"], s["role"], s["round"]) for s in systems] == [
        ("bm25", "bm25", None), ("base (splade-tiny)", "base", None), ("round 0", "round", 0), ("round 1", "round", 1),
        ("round 10", "round", 10), ("average of rounds 0–10", "average", None)]
    assert [s["ndcg@10_vs_baseline"] for s in systems] == [1.0, 0.8, 1.2, 1.24, 1.4, 1.3]


def test_a_damaged_metrics_file_is_an_error_that_names_it(run):
    damaged = run.metrics(run.round(1))
    damaged.write_text('{"name": "round 1"')  # cut short
    with pytest.raises(SparsefitError, match="damaged") as error:
        run.systems()
    assert str(damaged) in str(error.value)
    write_json(damaged, [{"name": "round 1"}])  # valid JSON without its metrics
    with pytest.raises(SparsefitError, match="without its name or mean metrics"):
        run.systems()


def test_the_studio_reports_a_damaged_metrics_file_instead_of_skipping_it(run, tmp_path):
    from sparsefit.serving.app import create_app

    workspace = tmp_path / "ws"
    (workspace / "runs").mkdir(parents=True)
    moved = Path((workspace / "runs" / "run"))
    run.path.rename(moved)
    RunFolder(moved).metrics(RunFolder(moved).round(0)).write_text("not json")
    app = create_app([], workspace=workspace, allowed_roots=[tmp_path])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.get("/api/runs/run")
    assert response.status_code == 400 and "rounds/0/metrics.json" in response.json()["detail"]


def test_stages_are_named_in_one_place_and_described_as_data(tmp_path):
    run = RunFolder(tmp_path)
    state = RunState(tmp_path)
    for stage in ("inputs", RunFolder.BASELINES, run.train_stage(0), run.evaluate_stage(0), RunFolder.AVERAGE_EVALUATED):
        state.mark(stage)
    assert not exported(tmp_path)
    state.mark(RunFolder.EXPORT)
    assert exported(tmp_path)
    described = {d["stage"]: (d["kind"], d["round"], d["average"]) for d in run.describe_stages()}
    assert described["round-0/train"] == ("train", 0, False)
    assert described["average/evaluate"] == ("evaluate", None, True)
    run.state_file.write_text('["export"]')  # not the shape RunState writes
    assert finished_stages(tmp_path) == [] and not exported(tmp_path)
    with pytest.raises(SparsefitError, match="no list of finished stages"):
        RunState(tmp_path)


def test_config_files_given_in_two_threads_at_once_do_not_mix(tmp_path):
    """The config file reaches the settings through a context variable, not the process environment."""
    from sparsefit.config import load_settings

    files = {}
    for rounds in (2, 7):
        files[rounds] = tmp_path / f"r{rounds}.yaml"
        files[rounds].write_text(f"rounds: {rounds}\n")
    seen = together(2, lambda i: {load_settings(files[(2, 7)[i]]).rounds for _ in range(200)})
    assert seen == [{2}, {7}]
    assert load_settings().rounds == 3  # nothing left behind for a call without a file
