"""Crash safety: kill -9 a real training run at seeded moments, resume each time, lose nothing.

The run trains on generated queries and evaluates on the demo's judged queries, so it passes
through every stage: generating queries, loading, baselines (BM25, encoding, indexing), training,
indexing, evaluating, mining and exporting. The final metrics must equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.conftest import EXAMPLES
from tests.helpers import CLI

SEED = 20261125

# Every test here trains (a `sparsefit train` child process or finetune): the slow tier.
pytestmark = pytest.mark.slow


def _command(tiny_model, out, *extra):
    return [*CLI, "train", *extra] if extra and extra[0] == "--resume" else [
        *CLI, "train", str(EXAMPLES / "catalog.csv"),
        "--eval-judgments", str(EXAMPLES / "judged_queries.csv"), "--query-products", "160", "--base-model", str(tiny_model),
        "--rounds", "2", "--train-batch-size", "16", "--learning-rate", "1e-3", "--negatives", "2", "--output", str(out),
    ]


def _stages(run) -> list[str]:
    state = run / "state.json"
    return json.loads(state.read_text())["done"] if state.is_file() else []


def _metrics(run) -> list:
    return [(s["name"], s["metrics"]) for s in json.loads((run / "report.json").read_text())["systems"]]


def test_kill_9_at_seeded_moments_and_resume_gives_the_uninterrupted_result(tiny_model, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = subprocess.run(_command(tiny_model, tmp_path / "reference"), capture_output=True, text=True, env=env, timeout=600)
    assert reference.returncode == 0, reference.stderr
    stages = _stages(tmp_path / "reference")

    # Kill points: after a seeded number of finished stages, plus a seeded delay into the next stage.
    run = tmp_path / "killed"
    rng = np.random.default_rng(SEED)
    targets = sorted(rng.choice(np.arange(0, len(stages) - 1), size=6, replace=False).tolist())
    kills = []
    command = _command(tiny_model, run)
    for target in targets:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.time() + 300
        while len(_stages(run)) < target and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 3.0)))
        if process.poll() is not None:
            assert process.returncode == 0, process.stderr.read().decode()
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        kills.append(tuple(_stages(run)))
        # Killed before the run folder was set up, a user starts again; after that, they resume.
        command = _command(tiny_model, run, "--resume", str(run)) if (run / "run.json").is_file() else _command(tiny_model, run)
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert "export" in _stages(run)
    assert len(kills) >= 3 and len(set(kills)) >= 3, kills  # killed in at least 3 different places
    assert all(len(a) <= len(b) for a, b in zip(kills, kills[1:]))  # finished stages are never lost
    got, want = _metrics(run), _metrics(tmp_path / "reference")
    assert [name for name, _ in got] == [name for name, _ in want]
    for (name, a), (_, b) in zip(got, want):
        if not name.startswith("hybrid"):  # Qdrant orders a leg's tied products its own way per process
            assert a == pytest.approx(b, abs=1e-6)
    assert (run / "queries.jsonl").read_bytes() == (tmp_path / "reference" / "queries.jsonl").read_bytes()
    assert json.loads((run / "split.json").read_text()) == json.loads((tmp_path / "reference" / "split.json").read_text())
    assert (json.loads((run / "rounds/1/negatives.json").read_text())
            == json.loads((tmp_path / "reference" / "rounds/1/negatives.json").read_text()))


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tiny_model, tmp_path):
    run = tmp_path / "run"
    # As at a terminal: SIGINT handled even where this test runs with it ignored (a background CI job).
    process = subprocess.Popen(_command(tiny_model, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and "baselines" not in _stages(run):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert f"sparsefit train --resume {run}" in " ".join((out + err).split())
    assert "baselines" in _stages(run)


def test_a_damaged_checkpoint_is_trained_again_and_earlier_rounds_are_kept(tiny_model, tmp_path):
    from sparsefit.pipeline import finetune, resume_trainer
    from tests.test_training import _settings

    run = finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", _settings(tiny_model, tmp_path / "run"),
                   show_progress=False)
    want = _metrics(run)
    weights = next((run / "rounds/1/model").rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated file, as after a disk error
    (run / "report.json").unlink()
    stages = _stages(run)
    trainer = resume_trainer(run, show_progress=False)
    trainer.fit()
    trainer.export()
    repairs = json.loads((run / "repairs.json").read_text())
    assert [r["round"] for r in repairs] == [1] and "round-1/train" in repairs[0]["redone"]
    assert "round-0/train" in stages and "round-0/train" in _stages(run)  # round 0 was not redone
    got = _metrics(run)
    for (name, a), (_, b) in zip(got, want):
        if not name.startswith("hybrid"):  # Qdrant orders a leg's tied products its own way per process
            assert a == pytest.approx(b, abs=1e-6)
