"""The CLI's answers to wrong command lines: usage errors, unsafe tokens and flags that --resume would ignore.

Each case runs the real CLI (``sparsefit.cli.main`` with an argv, or the installed ``sparsefit`` script)
and checks the exit code and what the user sees: one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.helpers import run_cli as run

SPARSEFIT = Path(sys.executable).parent / "sparsefit"


def one_error_line(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- usage errors (item 13) --------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["indx"], ["No such command 'indx'", "see 'sparsefit --help'"]),
        (["train", "--rounds", "abc"], ["Invalid value for '--rounds'", "integer", "see 'sparsefit train --help'",
                                       "usage: sparsefit train [OPTIONS]"]),
        (["search"], ["Missing argument", "run", "see 'sparsefit search --help'"]),
        (["train", "--no-such-flag"], ["No such option: --no-such-flag", "see 'sparsefit train --help'"]),
        (["rules", "list"], ["Missing argument", "see 'sparsefit rules list --help'"]),
    ],
    ids=["unknown-command", "bad-int", "missing-argument", "unknown-option", "subcommand-missing-argument"],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, fragments):
    one_error_line(*run(capsys, *argv), *fragments)


def test_version_prints_the_installed_version(capsys):
    code, out, err = run(capsys, "--version")
    assert code == 0, err
    assert out == f"sparsefit {version('sparsefit')}\n"
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["rules", "--help"]])
def test_help_exits_0(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert f"Usage: sparsefit {' '.join(argv[:-1])}".strip() in " ".join(out.split())
    assert "Traceback" not in out + err and "error" not in err


def test_no_arguments_prints_the_help_and_exits_2(capsys):
    """A command line without a command is a usage error: the help, and exit code 2 (as click does)."""
    code, out, err = run(capsys)
    assert code == 2
    text = " ".join(out.split())
    assert "Usage: sparsefit [OPTIONS] COMMAND" in text
    for command in ("train", "evaluate", "serve", "studio", "rules"):
        assert command in text
    assert "Traceback" not in out + err and "error" not in err


def test_a_command_group_without_a_command_prints_its_help_and_exits_2(capsys):
    code, out, err = run(capsys, "rules")
    assert code == 2
    text = " ".join(out.split())
    assert "Usage: sparsefit rules [OPTIONS] COMMAND" in text
    assert "add" in text and "list" in text and "remove" in text
    assert "Traceback" not in out + err and "error" not in err


@pytest.mark.slow  # the installed script in child processes
def test_the_installed_script_gives_one_line_usage_errors_and_the_version():
    bad = subprocess.run([str(SPARSEFIT), "train", "--rounds", "abc"], capture_output=True, text=True, timeout=120)
    one_error_line(bad.returncode, bad.stdout, bad.stderr, "'--rounds'", "sparsefit train --help")
    shown = subprocess.run([str(SPARSEFIT), "--version"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout == f"sparsefit {version('sparsefit')}\n", shown.stderr


# -- tokens (item 1) ---------------------------------------------------------------------------
TOKEN_FIX = ("at least 16 characters", "secrets.token_urlsafe(24)", "SPARSEFIT_TOKEN")


@pytest.fixture
def taken_port():
    """A port something already listens on: a server that wrongly started would fail (exit 1) there, not hang."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield str(sock.getsockname()[1])


def test_studio_on_all_interfaces_with_an_empty_token_is_refused_before_it_starts(capsys, tmp_path, taken_port):
    workspace = tmp_path / "ws"
    code, out, err = run(capsys, "studio", "--host", "0.0.0.0", "--token", "", "--port", taken_port, "--no-open",
                         "--workspace", str(workspace), "--allow-root", str(tmp_path))
    one_error_line(code, out, err, "setting 'token' is invalid", "the token is empty", *TOKEN_FIX)
    assert "Studio" not in err and not workspace.exists()  # never started


def test_serve_with_an_empty_token_from_the_environment_is_refused_before_the_run_is_opened(capsys, tmp_path,
                                                                                            monkeypatch):
    monkeypatch.setenv("SPARSEFIT_TOKEN", "")
    code, out, err = run(capsys, "serve", str(tmp_path), "--host", "0.0.0.0")
    line = one_error_line(code, out, err, "the token is empty", *TOKEN_FIX)
    assert "not a finished training run" not in line  # the run folder was never looked at
    assert "Serving" not in err


@pytest.mark.parametrize("token, problem", [("short", "has only 5 characters"), ("x" * 15, "has only 15 characters"),
                                            (" " * 20, "is only whitespace")])
def test_short_tokens_are_refused_even_on_loopback(capsys, tmp_path, token, problem):
    code, out, err = run(capsys, "serve", str(tmp_path), "--token", token)
    line = one_error_line(code, out, err, problem, *TOKEN_FIX)
    assert "not a finished training run" not in line
    if token.strip():
        assert token not in line  # the secret is never echoed


def test_a_long_enough_token_passes_and_the_run_is_checked_next(capsys, tmp_path):
    code, out, err = run(capsys, "serve", str(tmp_path), "--host", "0.0.0.0", "--token", "k" * 16)
    one_error_line(code, out, err, "not a finished training run")


# -- train --resume with other flags (item 14) -------------------------------------------------
@pytest.mark.parametrize(
    "extra, named",
    [
        (["--rounds", "3", "--learning-rate", "1"], ["--rounds", "--learning-rate"]),
        (["--judgments", "j.csv", "--gain", "E=1", "--config", "c.yaml"], ["--judgments", "--gain", "--config"]),
        (["--test-judgments", "t.csv", "--output", "elsewhere"], ["--eval-judgments", "--output"]),
    ],
)
def test_resume_refuses_the_flags_it_would_ignore(capsys, tmp_path, extra, named):
    """Checked before the run folder is read: an empty folder gets this error, not 'not a training run'."""
    code, out, err = run(capsys, "train", "--resume", str(tmp_path), *extra)
    line = one_error_line(code, out, err, "--resume continues a run", "would be ignored: ", "drop them", "--output")
    assert set(line.split("would be ignored: ")[1].split(". Fix:")[0].split(", ")) == set(named)
    assert "not a sparsefit training run" not in line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_resume_alone_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    one_error_line(*run(capsys, "train", "--resume", str(tmp_path)), "not a sparsefit training run", str(tmp_path))


@pytest.fixture
def started_run(tmp_path):
    """A run folder as `sparsefit train` leaves it at its first moment: run.json and config.yaml."""
    catalog = tmp_path / "products.csv"
    catalog.write_text("product_uid,product_title\n100,cordless drill\n101,garden hose\n", encoding="utf-8")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"catalog": str(catalog.resolve()),
                                                 "judgments": str(tmp_path / "gone.csv")}))
    (folder / "config.yaml").write_text("seed: 13\n")
    return folder, catalog


def test_resume_refuses_a_different_catalog(capsys, tmp_path, started_run):
    folder, catalog = started_run
    other = tmp_path / "other.csv"
    other.write_text(catalog.read_text(encoding="utf-8"), encoding="utf-8")
    one_error_line(*run(capsys, "train", str(other), "--resume", str(folder)),
                   f"CATALOG {other}", f"the run's catalog is {catalog.resolve()}", "would be ignored")


def test_resume_accepts_the_runs_own_catalog(capsys, tmp_path, started_run, monkeypatch):
    """The same file, spelled relatively, is no conflict: the run resumes (and here stops at its missing judgments)."""
    folder, catalog = started_run
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*run(capsys, "train", "products.csv", "--resume", str(folder)), "gone.csv", "not found")
    assert "would be ignored" not in line


# -- --device (issue 23): a GPU that is not here is one line before any work ---------------------
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "examples/catalog.csv", "--device", "cuda"], ["--device cuda: no CUDA GPU is available here"]),
        (["evaluate", "examples/catalog.csv", "-j", "examples/judged_queries.csv", "--device", "cuda:1"],
         ["--device cuda:1: no CUDA GPU"]),
        (["serve", "runs/none", "--device", "cuda"], ["--device cuda: no CUDA GPU"]),
        (["train", "--resume", "runs/none", "--device", "cuda"], ["--device cuda: no CUDA GPU"]),
        (["train", "examples/catalog.csv", "--device", "gpu"], ["unknown device 'gpu'", "auto, cpu, cuda, cuda:N or mps"]),
    ],
)
def test_a_device_that_is_not_here_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, argv, fragments):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # recorded: --device cuda:N pins it in this process
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.chdir(Path(__file__).parents[1])
    one_error_line(*run(capsys, *argv), *fragments)
    assert not (Path("runs") / "none").exists()


# -- Qdrant cluster flags (issue "scale out", part 4) --------------------------------------------
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "examples/catalog.csv", "--qdrant-shards", "0"], ["Invalid value for '--qdrant-shards'", "greater than or equal to 1"]),
        (["train", "examples/catalog.csv", "--qdrant-shards", "3"],
         ["setting 'qdrant_shards' is invalid", "give qdrant_url too", "--qdrant-shards"]),
        (["evaluate", "examples/catalog.csv", "-j", "examples/judged_queries.csv", "--qdrant-url", "http://127.0.0.1:9",
          "--qdrant-replicas", "2", "--qdrant-write-consistency", "3"],
         ["setting 'qdrant_write_consistency' is invalid", "3 replicas cannot confirm a write when each shard has 2"]),
    ],
    ids=["zero-shards", "shards-without-a-server", "write-consistency-above-replicas"],
)
def test_cluster_flags_are_checked_before_any_work(capsys, monkeypatch, tmp_path, argv, fragments):
    monkeypatch.chdir(Path(__file__).parents[1])
    before = set(Path("runs").iterdir()) if Path("runs").is_dir() else set()
    one_error_line(*run(capsys, *argv), *fragments)
    assert (set(Path("runs").iterdir()) if Path("runs").is_dir() else set()) == before  # no run folder started


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cluster_flags_reach_the_index_location(capsys, monkeypatch, tmp_path, command):
    """The flags become settings, and the settings the server location the index is built in."""
    import sparsefit.pipeline
    from sparsefit.errors import SparsefitError
    from sparsefit.pipeline import index_location

    seen = {}

    def stop(catalog, judgments, settings, *args, **kwargs):
        seen["location"] = index_location(settings, tmp_path / "index")
        raise SparsefitError("stopped here by the test")

    if command == "evaluate":
        monkeypatch.setattr(sparsefit.pipeline, "run_evaluation", stop)
    else:  # train builds the trainer of the settings' model type
        monkeypatch.setattr(sparsefit.pipeline, "trainer_class", lambda settings: stop)
    monkeypatch.chdir(Path(__file__).parents[1])
    monkeypatch.setenv("SPARSEFIT_QDRANT_API_KEY", "k" * 20)
    code, out, err = run(capsys, command, "examples/catalog.csv", "-j", "examples/judged_queries.csv",
                         "--qdrant-url", "http://localhost:6333", "--collection", "shop", "--qdrant-shards", "6",
                         "--qdrant-replicas", "2", "--qdrant-write-consistency", "2", "--qdrant-on-disk",
                         "--output", str(tmp_path / "run"))
    one_error_line(code, out, err, "stopped here by the test")
    location = seen["location"]
    assert (location.url, location.collection, location.api_key) == ("http://localhost:6333", "shop", "k" * 20)
    assert (location.shards, location.replicas, location.write_consistency, location.on_disk) == (6, 2, 2, True)
