"""``sparsefit publish``: a finished run's model and card pushed through the real ``huggingface_hub`` client to a
local fake hub (``tests/fake_hub.py``: the hub's HTTP API for create repo, branch, preupload and commit), and
written as a .tar.gz. No model is loaded: the run folder is built by hand (model files of random bytes, a card,
state.json with the ``export`` stage), so these tests need no torch and take well under a second each.
"""

from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path

import pytest

from sparsefit.publish import hub_card, publish, published_files, write_archive
from tests.fake_hub import fake_hub
from tests.helpers import error_of, free_port, run_cli

TOKEN = "hf_fakeWriteToken0123456789abcdef"  # what the fake hub accepts; must never be printed
WRONG = "hf_wrongSecret9876543210fedcba"
CARD = ("# sparsefit model: splade-tiny fine-tuned on catalog.csv\n\n"
        "- Base model: `splade-tiny` (splade); 1 rounds\n\n"
        "| system | nDCG@10 |\n|---|---|\n| bm25 | 0.8024 |\n| round 0 | 0.8458 |\n")


def make_run(folder: Path, *, finished: bool = True, base_model: str = "splade-tiny") -> Path:
    """A run folder as `sparsefit train` leaves it, as far as publishing reads it (no real model)."""
    model = folder / "model"
    (model / "1_SpladePooling").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "bert", "hidden_size": 32}\n', encoding="utf-8")
    (model / "model.safetensors").write_bytes(random.Random(7).randbytes(150_000))
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "WordPiece"}}\n', encoding="utf-8")
    (model / "modules.json").write_text('[{"idx": 0, "name": "0", "path": ""}]\n', encoding="utf-8")
    (model / "1_SpladePooling" / "config.json").write_text('{"pooling_strategy": "max"}\n', encoding="utf-8")
    (model / "README.md").write_text("---\ntags:\n- sentence-transformers\n---\n# SPLADE Sparse Encoder\n", encoding="utf-8")
    (folder / "README.md").write_text(CARD, encoding="utf-8")
    (folder / "config.yaml").write_text(f"base_model: {base_model}\nrounds: 1\n", encoding="utf-8")
    (folder / "run.json").write_text(json.dumps({"catalog": "catalog.csv", "judgments": "judged.csv"}), encoding="utf-8")
    (folder / "report.json").write_text("{}\n", encoding="utf-8")
    stages = ["inputs", "baselines", "round-0/train", "round-0/evaluate"] + (["export"] if finished else [])
    (folder / "state.json").write_text(json.dumps({"done": stages}), encoding="utf-8")
    return folder


def model_files(run: Path) -> dict[str, bytes]:
    """model/'s files by path (README.md, sentence-transformers' generic card, is replaced by the run's)."""
    model = run / "model"
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*")
            if p.is_file() and p.relative_to(model).as_posix() != "README.md"}


def committed(hub, repo_id: str, revision: str = "main") -> dict[str, bytes]:
    """The repo's files without the .gitattributes the hub puts in every new repo."""
    return {path: data for path, data in hub.files(repo_id, revision).items() if path != ".gitattributes"}


def one_error_line(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """conftest.py sets HF_HUB_OFFLINE=1, which huggingface_hub reads once: allow requests (to the local fake)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.fixture
def run(tmp_path) -> Path:
    return make_run(tmp_path / "shoes-run")


@pytest.fixture
def hub():
    with fake_hub(TOKEN, read_tokens=("hf_readOnlyToken",)) as server:
        yield server
        assert server.unhandled == []  # huggingface_hub asked for nothing the fake does not know


# -- to the hub ------------------------------------------------------------------------------
def test_files_arrive_byte_identical_with_the_card_as_readme(run, hub):
    url = publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    files = committed(hub, "acme/shoes")
    card = files.pop("README.md").decode("utf-8")
    assert files == model_files(run)  # every file of model/, byte for byte, at the repo's root
    assert card == hub_card(run) and card.endswith(CARD)  # the run's card wins over model/README.md
    assert card.startswith("---\nlicense: apache-2.0\n") and "library_name: sentence-transformers" in card
    assert "SPLADE Sparse Encoder" not in card
    assert hub.repos["acme/shoes"].private is False
    oid = hub.repos["acme/shoes"].branches["main"]
    assert url == f"{hub.url}/acme/shoes/commit/{oid}"
    assert hub.history("acme/shoes")[0] == "sparsefit publish: the model of run shoes-run"


def test_the_private_flag_is_recorded(run, hub):
    publish(run, "acme/private-shoes", private=True, token=TOKEN, endpoint=hub.url)
    assert hub.repos["acme/private-shoes"].private is True
    assert "model.safetensors" in committed(hub, "acme/private-shoes")


def test_private_refuses_an_existing_public_repository(run, hub):
    publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    before = hub.history("acme/shoes")
    err = error_of(publish, run, "acme/shoes", private=True, token=TOKEN, endpoint=hub.url)
    assert "acme/shoes exists and is public" in str(err) and err.hint
    assert hub.history("acme/shoes") == before and hub.repos["acme/shoes"].private is False


def test_revision_puts_the_files_on_that_branch(run, hub):
    url = publish(run, "acme/shoes", revision="experiments/round-2", token=TOKEN, endpoint=hub.url)
    files = committed(hub, "acme/shoes", "experiments/round-2")
    assert files.pop("README.md") == hub_card(run).encode("utf-8")
    assert files == model_files(run)
    assert committed(hub, "acme/shoes", "main") == {}  # main keeps only the new repo's .gitattributes
    assert url.endswith(hub.repos["acme/shoes"].branches["experiments/round-2"])


def test_publishing_again_sends_only_what_changed(run, hub):
    first = publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    assert publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url) == first  # nothing new: no empty commit
    assert len(hub.history("acme/shoes")) == 2
    (run / "model" / "config.json").write_text('{"model_type": "bert", "hidden_size": 64}\n', encoding="utf-8")
    second = publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url, commit_message="round 2")
    assert second != first and hub.history("acme/shoes")[0] == "round 2"
    assert committed(hub, "acme/shoes")["config.json"] == (run / "model" / "config.json").read_bytes()


def test_the_token_comes_from_hf_token(run, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    publish(run, "acme/shoes", endpoint=hub.url)
    assert "config.json" in committed(hub, "acme/shoes")


def test_a_hub_id_base_model_and_a_license_go_into_the_card_metadata(tmp_path, hub):
    run = make_run(tmp_path / "run", base_model="acme/bert-mini")
    assert "license: other\n" in hub_card(run) and "base_model: acme/bert-mini\n" in hub_card(run)
    publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url, license="mit")
    card = committed(hub, "acme/shoes")["README.md"].decode("utf-8")
    assert card.startswith("---\nlicense: mit\n") and "base_model: acme/bert-mini" in card
    err = error_of(hub_card, run, "MIT License!")
    assert "not a license id" in str(err)


# -- refusals and failures -------------------------------------------------------------------
def test_a_wrong_token_is_refused_without_showing_it(run, hub):
    err = error_of(publish, run, "acme/shoes", token=WRONG, endpoint=hub.url)
    text = str(err)
    assert "refused the token" in text and "HTTP 401" in text and "HF_TOKEN" in text
    assert WRONG not in text and "\n" not in text
    assert "acme/shoes" not in hub.repos


def test_a_read_token_is_refused(run, hub):
    err = error_of(publish, run, "acme/shoes", token="hf_readOnlyToken", endpoint=hub.url)
    assert "refused the token" in str(err) and "HTTP 403" in str(err)
    assert "hf_readOnlyToken" not in str(err)
    # A repo that exists: create_repo(exist_ok=True) looks it up after the 403, and the commit is refused.
    publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    before = hub.history("acme/shoes")
    (run / "model" / "config.json").write_text("{}\n", encoding="utf-8")
    err = error_of(publish, run, "acme/shoes", token="hf_readOnlyToken", endpoint=hub.url)
    assert "refused the token" in str(err) and "HTTP 403" in str(err)
    assert hub.history("acme/shoes") == before


def test_a_missing_hf_token_is_a_clear_error(run, hub):
    err = error_of(publish, run, "acme/shoes", endpoint=hub.url)
    assert "no token" in err.message and "HF_TOKEN" in err.hint
    assert hub.requests == []


def test_an_unfinished_run_is_refused(tmp_path, hub):
    run = make_run(tmp_path / "run", finished=False)
    err = error_of(publish, run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    assert "has not finished exporting its model" in str(err) and "--resume" in str(err)
    assert "not a training run folder" in str(error_of(publish, tmp_path, "acme/shoes", token=TOKEN, endpoint=hub.url))
    assert "run folder not found" in str(error_of(publish, tmp_path / "nope", "acme/shoes", token=TOKEN, endpoint=hub.url))
    assert "has not finished" in str(error_of(write_archive, run, tmp_path / "m.tar.gz"))
    assert hub.requests == [] and not (tmp_path / "m.tar.gz").exists()


@pytest.mark.parametrize("repo_id", ["shoes", "acme/", "/shoes", "acme/sho es", "acme/shoes/v2", "acme--x/shoes",
                                     "acme/-shoes", "acme/shoes.git", "acme/" + "s" * 97])
def test_a_bad_repo_id_is_refused_with_an_example(run, hub, repo_id):
    err = error_of(publish, run, repo_id, token=TOKEN, endpoint=hub.url)
    assert "is not ORG/NAME" in err.message and "acme/catalog-splade" in err.hint
    assert hub.requests == []


def test_an_unreachable_hub_is_a_clear_error(run):
    endpoint = f"http://127.0.0.1:{free_port()}"
    err = error_of(publish, run, "acme/shoes", token=TOKEN, endpoint=endpoint)
    assert f"cannot reach {endpoint}" in str(err) and TOKEN not in str(err)


def test_offline_mode_is_named(run, hub, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    err = error_of(publish, run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    assert "offline" in err.message and "HF_HUB_OFFLINE" in err.hint


# -- the archive -----------------------------------------------------------------------------
def archive_files(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def test_the_archive_holds_the_same_files_under_one_folder(run, hub, tmp_path):
    target = write_archive(run, tmp_path / "shoes.tar.gz")
    assert target == tmp_path / "shoes.tar.gz"
    files = archive_files(target)
    assert all(name.startswith("shoes-run/") for name in files)
    publish(run, "acme/shoes", token=TOKEN, endpoint=hub.url)
    assert {name.removeprefix("shoes-run/"): data for name, data in files.items()} == committed(hub, "acme/shoes")
    assert [name for name, _ in published_files(run)][-1] == "README.md"


def test_the_archive_must_be_a_tar_gz(run, tmp_path):
    err = error_of(write_archive, run, tmp_path / "shoes.zip")
    assert ".tar.gz" in err.message and not (tmp_path / "shoes.zip").exists()


def test_a_missing_archive_folder_is_a_clear_error(run, tmp_path):
    err = error_of(write_archive, run, tmp_path / "missing" / "shoes.tar.gz")
    assert "folder does not exist" in err.message and err.file == str(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_a_failed_archive_write_leaves_the_old_file_and_no_partial_one(run, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "shoes.tar.gz"
    target.write_bytes(b"the previous archive")
    original = tarfile.TarFile.addfile
    calls = []

    def fail_midway(self, tarinfo, fileobj=None):
        calls.append(tarinfo.name)
        if tarinfo.name.endswith("model.safetensors"):
            raise OSError(28, "No space left on device")
        return original(self, tarinfo, fileobj)

    monkeypatch.setattr(tarfile.TarFile, "addfile", fail_midway)
    err = error_of(write_archive, run, target)
    assert "No space left on device" in err.message and err.file == str(target)
    assert len(calls) > 1  # it failed part way through, after writing some members
    assert target.read_bytes() == b"the previous archive"
    assert [p.name for p in folder.iterdir()] == ["shoes.tar.gz"]  # no temporary file left behind


# -- the command line ------------------------------------------------------------------------
def test_cli_publishes_and_writes_the_archive(run, hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    target = tmp_path / "shoes.tar.gz"
    code, out, err = run_cli(capsys, "publish", run, "--repo", "acme/shoes", "--private", "--to", target,
                             "--endpoint", hub.url)
    assert code == 0, err
    oid = hub.repos["acme/shoes"].branches["main"]
    assert out.splitlines() == [str(target), f"{hub.url}/acme/shoes/commit/{oid}"]
    said = " ".join(err.split())
    assert "Published acme/shoes (6 files," in said and ", private)" in said and f"Wrote {target} (6 files," in said
    assert TOKEN not in out + err
    assert hub.repos["acme/shoes"].private is True and len(archive_files(target)) == 6


def test_cli_wrong_token_is_one_line_exit_2_without_the_token(run, hub, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", WRONG)
    code, out, err = run_cli(capsys, "publish", run, "--repo", "acme/shoes", "--endpoint", hub.url)
    one_error_line(code, out, err, "refused the token", "HTTP 401", "HF_TOKEN")
    assert WRONG not in out + err


def test_cli_needs_repo_or_to(run, capsys):
    one_error_line(*run_cli(capsys, "publish", run), "--repo", "--to")
    one_error_line(*run_cli(capsys, "publish", run, "--private", "--to", run.parent / "m.tar.gz"), "apply to --repo")
    assert not (run.parent / "m.tar.gz").exists()


def test_cli_missing_token_writes_no_archive_first(run, hub, tmp_path, capsys):
    target = tmp_path / "shoes.tar.gz"
    one_error_line(*run_cli(capsys, "publish", run, "--repo", "acme/shoes", "--to", target, "--endpoint", hub.url),
                   "no token", "HF_TOKEN")
    assert not target.exists() and hub.requests == []


def test_readme_in_archive_is_the_hub_card(run, tmp_path):
    files = archive_files(write_archive(run, tmp_path / "shoes.tar.gz", license="cc-by-4.0"))
    card = files["shoes-run/README.md"].decode("utf-8")
    assert card.startswith("---\nlicense: cc-by-4.0\n") and card.endswith(CARD)
    with tarfile.open(tmp_path / "shoes.tar.gz") as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["shoes-run"].isdir() and members["shoes-run/1_SpladePooling"].isdir()
    assert {m.uname for m in members.values()} == {""} and members["shoes-run/model.safetensors"].mode == 0o644
