from __future__ import annotations

import pytest

from sparsefit.config import save_settings, load_settings, read_config_file
from sparsefit.errors import SparsefitError


def test_defaults():
    s = load_settings()
    assert (s.seed, s.test_fraction, s.models, s.bm25, s.qdrant_url) == (13, 0.2, ["splade-tiny"], True, None)


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
