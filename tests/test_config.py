from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sparsefit.config import MIN_TOKEN_LENGTH, load_settings, read_config_file, save_settings, token_problem
from sparsefit.errors import SparsefitError
from tests.conftest import EXAMPLES


def test_defaults():
    s = load_settings()
    assert (s.seed, s.test_fraction, s.models, s.bm25, s.qdrant_url) == (13, 0.2, ["splade-tiny"], True, None)


def test_qdrant_cluster_settings(monkeypatch):
    s = load_settings()
    assert (s.qdrant_shards, s.qdrant_replicas, s.qdrant_write_consistency, s.qdrant_on_disk) == (None, None, None, False)
    monkeypatch.setenv("SPARSEFIT_QDRANT_URL", "http://localhost:6333")
    monkeypatch.setenv("SPARSEFIT_QDRANT_SHARDS", "6")
    monkeypatch.setenv("SPARSEFIT_QDRANT_ON_DISK", "true")
    s = load_settings(qdrant_replicas=2, qdrant_write_consistency=2)
    assert (s.qdrant_shards, s.qdrant_replicas, s.qdrant_write_consistency, s.qdrant_on_disk) == (6, 2, 2, True)
    with pytest.raises(SparsefitError, match="setting 'qdrant_write_consistency' is invalid: 3 replicas cannot confirm"):
        load_settings(qdrant_replicas=2, qdrant_write_consistency=3)
    with pytest.raises(SparsefitError, match="setting 'qdrant_replicas' is invalid"):
        load_settings(qdrant_replicas=0)
    monkeypatch.delenv("SPARSEFIT_QDRANT_URL")
    with pytest.raises(SparsefitError, match="setting 'qdrant_shards' is invalid: .*give qdrant_url too") as err:
        load_settings()  # sharding without a server: refused when the settings are read, not after training
    assert "--qdrant-shards" in str(err.value)
    monkeypatch.delenv("SPARSEFIT_QDRANT_SHARDS")
    assert load_settings().qdrant_on_disk  # on-disk storage needs no server: Qdrant Edge keeps it too


def test_priority_flag_over_env_over_file(tmp_path, monkeypatch):
    file = tmp_path / "sparsefit.yaml"
    file.write_text("seed: 1\ntest_fraction: 0.3\nbatch_size: 8\nmodels: [minilm-l6]\n")
    monkeypatch.setenv("SPARSEFIT_SEED", "2")
    monkeypatch.setenv("SPARSEFIT_TEST_FRACTION", "0.25")
    s = load_settings(file, seed=3)
    assert s.seed == 3  # flag beats env and file
    assert s.test_fraction == 0.25  # env beats file
    assert s.batch_size == 8 and s.models == ["minilm-l6"]  # file beats defaults


def test_toml_file_and_unset_flags_do_not_override(tmp_path):
    file = tmp_path / "sparsefit.toml"
    file.write_text('seed = 99\ntext-fields = "title,brand"\n[gains]\nE = 1.0\nI = 0.0\n')
    s = load_settings(file, seed=None)
    assert s.seed == 99 and s.text_fields == ["title", "brand"] and s.gains == {"E": 1.0, "I": 0.0}


def test_invalid_value_names_the_setting(tmp_path):
    with pytest.raises(SparsefitError, match="setting 'test_fraction' is invalid"):
        load_settings(test_fraction=1.5)
    file = tmp_path / "bad.yaml"
    file.write_text("no_such_setting: 1\n")
    with pytest.raises(SparsefitError, match="no_such_setting"):
        load_settings(file)


@pytest.mark.parametrize(
    "name, text, message",
    [("x.yaml", "seed: [1\n", "not valid"), ("x.ini", "seed=1", "must end in"), ("x.yaml", "- 1\n", "mapping")],
)
def test_bad_config_files(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SparsefitError, match=message):
        read_config_file(path)
    with pytest.raises(SparsefitError, match="not found"):
        read_config_file(tmp_path / "absent.yaml")


def test_api_keys_come_from_env_and_are_never_saved(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSEFIT_QDRANT_API_KEY", "secret-123")
    monkeypatch.setenv("SPARSEFIT_LLM_API_KEY", "secret-456")
    s = load_settings()
    assert s.qdrant_api_key.get_secret_value() == "secret-123"
    assert s.llm_api_key.get_secret_value() == "secret-456"
    assert "qdrant_api_key" not in s.public_dict() and "llm_api_key" not in s.public_dict()
    assert "secret-123" not in repr(s)
    save_settings(s, tmp_path / "config.yaml")
    saved = (tmp_path / "config.yaml").read_text()
    assert "secret" not in saved
    assert load_settings(tmp_path / "config.yaml").qdrant_api_key.get_secret_value() == "secret-123"  # a resumed run


# -- bearer tokens -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token, problem",
    [
        ("", "the token is empty"),
        ("   \t ", "the token is only whitespace"),
        ("a", "the token has only 1 character;"),
        ("x" * (MIN_TOKEN_LENGTH - 1), f"the token has only {MIN_TOKEN_LENGTH - 1} characters"),
        (" " + "x" * MIN_TOKEN_LENGTH, "starts or ends with whitespace"),
        ("x" * MIN_TOKEN_LENGTH + "\n", "starts or ends with whitespace"),
    ],
)
def test_token_problem_says_why_and_how_to_make_one(token, problem):
    said = token_problem(token)
    assert said is not None and problem in said
    assert "at least 16 characters" in said and "secrets.token_urlsafe(24)" in said
    assert MIN_TOKEN_LENGTH == 16


@pytest.mark.parametrize("token", [None, "x" * MIN_TOKEN_LENGTH, "Zq3-" * 8])
def test_token_problem_accepts_no_token_and_long_tokens(token):
    assert token_problem(token) is None


def test_settings_refuse_a_short_token_from_flag_env_or_file(tmp_path, monkeypatch):
    with pytest.raises(SparsefitError, match="setting 'token' is invalid: the token has only 10 characters") as exc:
        load_settings(token="abcde12345")
    assert "abcde12345" not in str(exc.value) and "SPARSEFIT_TOKEN" in str(exc.value)
    monkeypatch.setenv("SPARSEFIT_TOKEN", "")
    with pytest.raises(SparsefitError, match="the token is empty"):
        load_settings()
    monkeypatch.delenv("SPARSEFIT_TOKEN")
    file = tmp_path / "s.yaml"
    file.write_text("token: '  '\n")
    with pytest.raises(SparsefitError, match="the token is only whitespace"):
        load_settings(file)
    good = "k" * MIN_TOKEN_LENGTH
    assert load_settings(token=good).token.get_secret_value() == good


# -- threads -----------------------------------------------------------------------------------
THREADS_PROBE = """
import os, sys
import torch
from tokenizers import Tokenizer
from sparsefit.models import ALIASES

if sys.argv[1] == "cli":      # SPARSEFIT_THREADS is set: any command that loads settings applies it
    from sparsefit.cli import main
    main(["inspect", sys.argv[2]])
elif sys.argv[1] == "api":    # the Python API: load_settings applies it too
    from sparsefit.config import load_settings
    load_settings(threads=int(sys.argv[2]))
tokenizer = Tokenizer.from_file(str(ALIASES["splade-tiny"].folder() / "tokenizer.json"))
before = len(os.listdir("/proc/self/task"))
tokenizer.encode_batch([f"cordless drill {i}" for i in range(5000)])  # starts the tokenizers' thread pool
print(torch.get_num_threads(), torch.get_num_interop_threads(), len(os.listdir("/proc/self/task")) - before)
"""


@pytest.mark.slow  # the CLI in child processes
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_threads_setting_limits_torch_and_the_tokenizers_pool():
    env = {k: v for k, v in os.environ.items()
           if k not in ("SPARSEFIT_THREADS", "RAYON_NUM_THREADS", "RAYON_RS_NUM_CPUS", "TOKENIZERS_PARALLELISM",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS")}

    def probe(*args: str, **extra_env: str) -> list[int]:
        done = subprocess.run([sys.executable, "-c", THREADS_PROBE, *args], capture_output=True, text=True,
                              env={**env, **extra_env}, timeout=300)
        assert done.returncode == 0, done.stderr
        return [int(n) for n in done.stdout.split()[-3:]]

    default = probe("none")
    threads = max(default) + 1  # differs from every default, so the check cannot pass by accident
    assert probe("cli", str(EXAMPLES / "catalog.csv"), SPARSEFIT_THREADS=str(threads)) == [threads] * 3
    assert probe("api", str(threads)) == [threads] * 3
