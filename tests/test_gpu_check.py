"""The GPU check runs here in its CPU-only mode, so that it cannot rot before someone runs it on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_its_cpu_half_without_a_gpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--steps", "2", "--catalog", str(EXAMPLES / "catalog.csv"),
         "--judgments", str(EXAMPLES / "judged_queries.csv"), "--encode-limit", "100", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cuda: not available here" in done.stdout
    report = json.loads(out.read_text())
    assert report["cuda_available"] is False and report["ok"] is True and "comparison" not in report
    cpu = report["devices"]["cpu"]
    assert (cpu["device"], cpu["path"], cpu["steps"], cpu["texts"]) == ("cpu", "fast", 2, 100)
    assert len(cpu["losses"]) == 2 and all(loss > 0 for loss in cpu["losses"]) and cpu["texts_per_s"] > 0


def test_vector_comparison_of_the_gpu_check_tells_equal_from_different():
    import importlib.util

    import scipy.sparse as sp

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    a = sp.csr_matrix([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    same = gpu_check.compare_vectors(a, a.copy())
    assert same == {"cosine_min": 1.0, "cosine_mean": 1.0, "max_abs_diff": 0.0, "top10_jaccard_mean": 1.0}
    other = gpu_check.compare_vectors(a, sp.csr_matrix([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]]))
    assert other["cosine_min"] == 0.0 and other["cosine_mean"] == 0.5 and other["max_abs_diff"] == 3.0
    assert other["top10_jaccard_mean"] == 0.5
