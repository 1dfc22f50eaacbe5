"""The CLI as a user meets it: a real subprocess, real files, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import EXAMPLES
from tests.helpers import cli_process as sparsefit

# Every test here runs the CLI as a child process: the slow tier.
pytestmark = pytest.mark.slow


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path):
    """A catalog of 6 products and judgments shaped like Home Depot's (a row id *and* product_uid)."""
    catalog = write(tmp_path / "products.csv", "product_uid,product_title\n" + "".join(
        f"{100 + i},{title}\n" for i, title in enumerate(
            ["cordless drill 20v", "garden hose 50 ft", "brass door knob", "led bulb 60w", "claw hammer", "paint roller"]
        )))
    rows = [(1, 100, "drill", 3), (2, 101, "drill", 1), (3, 101, "hose", 3), (4, 102, "hose", 1),
            (5, 102, "door knob", 3), (6, 103, "light bulb", 3), (7, 104, "hammer", 2.67), (8, 105, "roller", 3)]
    judgments = write(tmp_path / "judgments.csv", "id,product_uid,search_term,relevance\n" + "".join(
        f"{i},{p},{q},{r}\n" for i, p, q, r in rows))
    return catalog, judgments


def test_evaluate_demo_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = sparsefit("evaluate", str(EXAMPLES / "catalog.csv"), "--judgments", str(EXAMPLES / "judged_queries.csv"),
                       "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "bm25" in result.stderr and "splade-tiny" in result.stderr and "nDCG@10" in result.stderr
    report = json.loads((out / "report.json").read_text())
    names = [s["name"] for s in report["systems"]]
    assert names == ["bm25", "splade-tiny"]
    split = json.loads((out / "split.json").read_text())
    assert report["test_queries"] == len(split["test"]) == 28
    assert not set(split["train"]) & set(split["test"])
    for system in report["systems"]:
        assert 0.3 < system["metrics"]["ndcg@10"] <= 1.0
    # Same folder again: the split and the index are reused, the numbers are identical.
    again = sparsefit("evaluate", str(EXAMPLES / "catalog.csv"), "--judgments", str(EXAMPLES / "judged_queries.csv"),
                      "--output", str(out), "--seed", "99")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "split.json").read_text()) == split
    report2 = json.loads((out / "report.json").read_text())
    assert [s["metrics"] for s in report2["systems"]] == [s["metrics"] for s in report["systems"]]
    assert report2["systems"][1]["seconds"]["encode"] == 0.0  # index reopened, not rebuilt


def test_wrong_id_column_cannot_silently_evaluate(small, tmp_path):
    catalog, judgments = small
    result = sparsefit("evaluate", str(catalog), "--judgments", str(judgments), "--judgment-id-field", "id",
                       "--output", str(tmp_path / "out"), "--no-bm25")
    assert_one_line_error(result, "judgments.csv", 'column "id"', "probably does not match",
                          "--judgment-id-field product_uid")


def test_label_column_with_a_gap_is_an_error_not_a_zero(small, tmp_path):
    catalog, judgments = small
    lines = judgments.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ","  # row 4: blank relevance
    write(judgments, "\n".join(lines) + "\n")
    result = sparsefit("evaluate", str(catalog), "--judgments", str(judgments), "--output", str(tmp_path / "o"))
    assert_one_line_error(result, "judgments.csv", "row 4", 'column "relevance"', "never read as 0")
    # Asked to skip, it is counted and reported, and the evaluation runs on what is left.
    skipped = sparsefit("inspect", str(catalog), "--judgments", str(judgments), "--on-invalid", "skip")
    assert skipped.returncode == 0, skipped.stderr
    assert "'blank label': 1" in skipped.stderr


def test_graded_labels_with_a_missing_grade_keep_their_gains(small, tmp_path):
    """Labels 1, 2.67 and 3 (no 2s): the range is still 1–3 and gains are label − 1, not re-ranked."""
    catalog, judgments = small
    result = sparsefit("inspect", str(catalog), "--judgments", str(judgments))
    assert result.returncode == 0, result.stderr
    assert "graded 1.0–3.0" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["evaluate", "absent.csv", "--judgments", "j.csv"], ["absent.csv", "not found"]),
        (["evaluate", "{catalog}"], ["--judgments"]),
        (["evaluate", "{catalog}", "--judgments", "{judgments}", "--test-fraction", "2"], ["test_fraction"]),
        (["evaluate", "{catalog}", "--judgments", "{judgments}", "--model", "nobody/none", "--no-bm25"],
         ["not an alias"]),
        (["inspect", "{catalog}", "--id-field", "sku"], ["id column 'sku' is not in the file"]),
        (["inspect", "{catalog}", "--judgments", "{judgments}", "--gain", "3"], ["LABEL=NUMBER"]),
        (["evaluate", "{catalog}", "--judgments", "{judgments}", "--qdrant-url", "http://127.0.0.1:9"],
         ["http://127.0.0.1:9"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(small, tmp_path, args, fragments):
    catalog, judgments = small
    args = [a.format(catalog=catalog, judgments=judgments) for a in args]
    if "--output" not in args and args[0] == "evaluate":
        args += ["--output", str(tmp_path / "out")]
    result = sparsefit(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)


def test_models_lists_the_offline_aliases():
    result = sparsefit("models")
    assert result.returncode == 0, result.stderr
    assert "splade-tiny" in result.stderr and "minilm-l6" in result.stderr and "yes" in result.stderr


def test_config_file_and_env(small, tmp_path):
    catalog, judgments = small
    config = write(tmp_path / "s.yaml", "seed: 5\ntest_fraction: 0.5\nbm25: true\nmodels: []\n")
    import os

    env = {**os.environ, "SPARSEFIT_SEED": "6"}
    result = sparsefit("evaluate", str(catalog), "--judgments", str(judgments), "--config", str(config),
                       "--output", str(tmp_path / "o"), env=env)
    assert result.returncode == 0, result.stderr
    saved = (tmp_path / "o" / "config.yaml").read_text()
    assert "seed: 6" in saved and "test_fraction: 0.5" in saved
    split = json.loads((tmp_path / "o" / "split.json").read_text())
    assert split["seed"] == 6 and len(split["test"]) == 3
