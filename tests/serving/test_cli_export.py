"""`sparsefit export RUN --format onnx|sentence-transformers` on a finished (tiny) run."""

from __future__ import annotations

import pytest

from tests.helpers import run_cli


pytestmark = pytest.mark.slow  # exports (traces) a model to ONNX and checks it with onnxruntime


def test_the_cli_exports_a_run_and_checks_it(tiny_run, tmp_path, capsys):
    code, out, err = run_cli(capsys, "export", tiny_run, "--format", "onnx", "--output", tmp_path / "onnx")
    assert code == 0, err
    assert "max |Δ|" in out + err and (tmp_path / "onnx" / "model.onnx").is_file()
    code, out, err = run_cli(capsys, "export", tiny_run, "--output", tmp_path / "st")
    assert code == 0, err
    assert (tmp_path / "st" / "modules.json").read_bytes() == (tiny_run / "model" / "modules.json").read_bytes()
    code, out, err = run_cli(capsys, "export", tiny_run, "--format", "tflite")
    assert code == 2 and "--format" in err


def test_export_never_replaces_the_run_or_a_folder_of_other_files(tiny_run, tmp_path, capsys):
    for target in (tiny_run, tiny_run.parent, tiny_run / "model", tiny_run / "model" / "x"):
        code, out, err = run_cli(capsys, "export", tiny_run, "--output", target)
        assert code == 2 and "would replace the run, a folder above it or its model/" in err, (target, err)
    other = tmp_path / "documents"
    other.mkdir()
    (other / "letter.txt").write_text("keep me")
    code, out, err = run_cli(capsys, "export", tiny_run, "--format", "onnx", "--output", other)
    assert code == 2 and "is not an earlier export of this format" in err
    assert (other / "letter.txt").read_text() == "keep me"
    assert (tiny_run / "model" / "modules.json").is_file()
