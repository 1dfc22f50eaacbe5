"""The bad-input corpus: messy exports as users have them, each with its expected outcome.

Every case runs the real CLI entry point in-process on real files and ends either in a one-line
error (exit code 2) that names what is wrong and the fix, or in a documented handling whose count is
reported. No case may print a traceback or succeed silently with a wrong result.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli

GOOD_CATALOG = "product_id,title,brand\n" + "".join(
    f"P{i:03d},{t},{b}\n" for i, (t, b) in enumerate([
        ("cordless drill 20v", "Acme"), ("garden hose 50 ft", "Flow"), ("brass door knob", "Knobco"),
        ("led bulb 60w", "Lumo"), ("claw hammer", "Acme"), ("paint roller", "Rolla"),
    ])
)
GOOD_JUDGMENTS = "query,product_id,label\n" + "".join(
    f"{q},{p},{lab}\n" for q, p, lab in [
        ("drill", "P000", "E"), ("drill", "P004", "I"), ("hose", "P001", "E"), ("door knob", "P002", "E"),
        ("light bulb", "P003", "E"), ("hammer", "P004", "S"), ("roller", "P005", "E"), ("hammer", "P000", "I"),
    ]
)


@dataclass
class Case:
    """One input and what must happen: ``error`` (exit 2, one line with every fragment) or ``handled``."""

    name: str
    catalog: bytes | str | None = GOOD_CATALOG
    judgments: bytes | str | None = None
    args: list[str] = field(default_factory=list)
    command: str = "inspect"
    expect: str = "error"  # "error" | "handled"
    fragments: list[str] = field(default_factory=list)
    catalog_name: str = "catalog.csv"
    judgments_name: str = "judgments.csv"
    setup: object = None  # callable(tmp_path, monkeypatch) for what files cannot express


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _no_space(tmp_path, monkeypatch):
    import sparsefit.run

    real = os.replace

    def full_disk(src, dst, *a, **k):
        if str(dst).endswith(".yaml") or str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(sparsefit.files.os, "replace", full_disk)


def _unreadable(tmp_path, monkeypatch):
    """chmod cannot stop root (these tests may run as root): the read itself is refused instead."""
    real = Path.read_bytes
    target = tmp_path / "catalog.csv"

    def guarded(self):
        if self == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", guarded)


J = GOOD_JUDGMENTS
CASES = [
    # -- catalog: ids ------------------------------------------------------------------------
    Case("catalog without an id column", "title,brand\ndrill,Acme\nhose,Flow\n", fragments=["id column", "--id-field"]),
    Case("duplicate product ids", "product_id,title\nP1,drill\nP2,hose\nP1,hammer\n", fragments=["row 4", "product_id", "P1"]),
    Case("blank product id", "product_id,title\nP1,drill\n,hose\n", fragments=["row 3", "product_id"]),
    Case("blank id skipped on request", "product_id,title\nP1,drill\n,hose\nP3,hammer\n", args=["--on-invalid", "skip"],
         expect="handled", fragments=["skipped rows", "1"]),
    Case("ids with leading zeros stay text", "product_id,title\n007,drill\n0070,hose\n", expect="handled", fragments=["007: drill"]),
    Case("judgment ids written as floats (100001.0)", "product_id,title\n100001,drill\n100002,hose\n",
         "query,product_id,label\ndrill,100001.0,1\nhose,100002.0,1\n", fragments=["100001.0", "product_id"]),
    # -- catalog: texts ----------------------------------------------------------------------
    Case("empty product text", "product_id,title\nP1,drill\nP2,\n", fragments=["row 3", "title", "empty"]),
    Case("whitespace-only product text", "product_id,title\nP1,drill\nP2,   \n", fragments=["row 3", "title"]),
    Case("very long product text", "product_id,title\nP1," + "drill " * 20000 + "\nP2,hose\n", expect="handled",
         fragments=["2 products"]),
    Case("quoted newline inside a title", 'product_id,title\nP1,"cordless\ndrill"\nP2,hose\n', expect="handled",
         fragments=["2 products"]),
    Case("CRLF line endings", "product_id,title\r\nP1,drill\r\nP2,hose\r\n", expect="handled", fragments=["2 products"]),
    # -- catalog: file shape ------------------------------------------------------------------
    Case("empty file", "", fragments=["empty"]),
    Case("header only", "product_id,title\n", fragments=["no rows"]),
    Case("semicolon delimiter", "product_id;title;brand\nP1;drill;Acme\nP2;hose;Flow\n", expect="handled",
         fragments=["2 products", "id column product_id"]),
    Case("tab-separated file named .csv", "product_id\ttitle\nP1\tdrill\nP2\those\n", expect="handled", fragments=["2 products"]),
    Case("row with extra fields", "product_id,title\nP1,drill\nP2,hose,extra,more\n", fragments=["row 3"]),
    Case("row with missing fields", "product_id,title,brand\nP1,drill,Acme\nP2\n", fragments=["row 3", "title"]),
    Case("extra columns are kept as payload", "product_id,title,price,color\nP1,drill,9.5,red\nP2,hose,3,green\n",
         expect="handled", fragments=["2 products"]),
    Case("UTF-8 byte order mark", "\ufeffproduct_id,title\nP1,drill\nP2,hose\n".encode("utf-8"), expect="handled",
         fragments=["id column product_id"]),
    Case("Latin-1 bytes", "product_id,title\nP1,caf\u00e9 table\nP2,hose\n".encode("latin-1"),
         fragments=["row 2", "UTF-8", "--encoding latin-1"]),
    Case("Latin-1 with --encoding", "product_id,title\nP1,caf\u00e9 table\nP2,hose\n".encode("latin-1"),
         args=["--encoding", "latin-1"], expect="handled", fragments=["café table"]),
    Case("invalid UTF-8 bytes", b"product_id,title\nP1,drill \xff\xfe bit\nP2,hose\n", fragments=["UTF-8", "row 2"]),
    Case("gzip-compressed CSV", gzip.compress(b"product_id,title\nP1,drill\nP2,hose\n"), catalog_name="catalog.csv.gz",
         expect="handled", fragments=["2 products"]),
    Case("unsupported format", b"PK\x03\x04 not really a workbook", catalog_name="catalog.xlsx", fragments=["xlsx", "CSV"]),
    Case("catalog file does not exist", None, fragments=["not found"]),
    Case("catalog path is a folder", "FOLDER", fragments=["folder"]),
    Case("unreadable catalog file", GOOD_CATALOG, setup=_unreadable, fragments=["catalog.csv", "ermission"]),
    # -- JSON and Parquet ----------------------------------------------------------------------
    Case("JSON that is not a list", json.dumps({"product_id": "P1", "title": "drill"}), catalog_name="catalog.json",
         fragments=["catalog.json", "list"]),
    Case("JSON list of strings", json.dumps(["drill", "hose"]), catalog_name="catalog.json", fragments=["catalog.json", "object"]),
    Case("broken JSON", '[{"product_id": "P1", "title": "drill"},', catalog_name="catalog.json", fragments=["catalog.json", "JSON"]),
    Case("JSONL with a broken line", '{"product_id": "P1", "title": "drill"}\n{"product_id": "P2", "title": \n',
         catalog_name="catalog.jsonl", fragments=["row 2", "JSON"]),
    Case("Parquet with a list column as text (joined with commas)", _parquet(pd.DataFrame({"product_id": ["P1", "P2"],
         "title": [["drill", "20v"], ["hose"]]})), catalog_name="catalog.parquet", args=["--text-fields", "title"],
         expect="handled", fragments=["P1: drill, 20v"]),
    Case("Parquet with a struct column as text", _parquet(pd.DataFrame({"product_id": ["P1", "P2"],
         "title": [{"name": "drill"}, {"name": "hose"}]})), catalog_name="catalog.parquet", args=["--text-fields", "title"],
         fragments=["title"]),
    Case("corrupt gzip file", b"\x1f\x8b\x08\x00broken", catalog_name="catalog.csv.gz", fragments=["decompress"]),
    Case("Parquet with a nested payload column", _parquet(pd.DataFrame({"product_id": ["P1", "P2"], "title": ["drill", "hose"],
         "specs": [{"volt": 20}, {"volt": 0}]})), catalog_name="catalog.parquet", expect="handled", fragments=["2 products"]),
    Case("Parquet numeric ids", _parquet(pd.DataFrame({"product_id": [1, 2], "title": ["drill", "hose"]})),
         catalog_name="catalog.parquet", expect="handled", fragments=["1: drill"]),
    # -- judgments ---------------------------------------------------------------------------
    Case("judgments: good file", judgments=J, expect="handled", fragments=["esci"]),
    Case("judgments: blank label", judgments="query,product_id,label\ndrill,P000,E\nhose,P001,\n",
         fragments=["row 3", "label", "--on-invalid skip"]),
    Case("judgments: unknown label value", judgments="query,product_id,label\ndrill,P000,E\nhose,P001,Maybe\n",
         fragments=["row 3", "label", "Maybe"]),
    Case("judgments: mixed label types", judgments="query,product_id,label\ndrill,P000,E\nhose,P001,3\nknob,P002,S\n",
         fragments=["row 3", "label"]),
    Case("judgments: NaN score", judgments="query,product_id,relevance\ndrill,P000,3\nhose,P001,nan\n",
         fragments=["row 3", "relevance"]),
    Case("judgments: infinite score", judgments="query,product_id,relevance\ndrill,P000,3\nhose,P001,inf\n",
         fragments=["row 3", "relevance"]),
    Case("judgments: blank query", judgments="query,product_id,label\ndrill,P000,E\n,P001,E\n", fragments=["row 3", "query"]),
    Case("judgments: blank product id", judgments="query,product_id,label\ndrill,P000,E\nhose,,E\n", fragments=["row 3", "product_id"]),
    Case("judgments: a few unknown products are dropped and counted",
         judgments=J + "drill,P999,E\n", expect="handled", fragments=["P999"]),
    Case("judgments: mostly unknown products (wrong id column)",
         judgments="query,product_id,label\ndrill,X1,E\nhose,X2,E\nknob,X3,E\n", fragments=["product_id", "catalog"]),
    Case("judgments: label column missing", judgments="query,product_id\ndrill,P000\n", fragments=["label", "--label-field"]),
    Case("judgments: same pair twice, same label", judgments=J + "drill,P000,E\n", expect="handled", fragments=["duplicate"]),
    Case("judgments: same pair twice, different labels", judgments=J + "drill,P000,S\n", expect="handled",
         fragments=["conflict"]),
    Case("judgments: conflicts refused on request", judgments=J + "drill,P000,S\n", args=["--on-conflict", "error"],
         fragments=["row 10", "drill"]),
    Case("judgments: BOM and CRLF", judgments=("\ufeff" + J.replace("\n", "\r\n")).encode("utf-8"), expect="handled", fragments=["esci"]),
    Case("judgments: JSON that is not a list", judgments=json.dumps({"query": "drill"}), judgments_name="j.json",
         fragments=["j.json", "list"]),
    # -- evaluation shape ----------------------------------------------------------------------
    Case("evaluate: a query with no relevant product is counted, not evaluated",
         judgments=J + "mystery,P003,I\n", command="evaluate", args=["--no-bm25", "--model", "splade-tiny"],
         expect="handled", fragments=["not evaluable"]),
    Case("evaluate: all judgments in one query", judgments="query,product_id,label\ndrill,P000,E\ndrill,P001,I\n",
         command="evaluate", fragments=["only 1 judged query has", "held out"]),
    Case("evaluate: no judgments given", command="evaluate", fragments=["--judgments"]),
    # -- settings and environment --------------------------------------------------------------
    Case("config file is not YAML", judgments=J, args=["--config", "CONFIG::rounds: [1, 2"], fragments=["config"]),
    Case("config file with an unknown setting", judgments=J, args=["--config", "CONFIG::roundz: 3\n"], fragments=["roundz"]),
    Case("config value of the wrong type", judgments=J, args=["--config", "CONFIG::seed: many\n"], fragments=["seed"]),
    Case("output folder cannot be written (disk full)", judgments=J, command="evaluate", setup=_no_space,
         args=["--no-bm25"], fragments=["No space left", "--output"]),
    Case("output folder is a file", judgments=J, command="evaluate", args=["--output", "OUTFILE"], fragments=["output"]),
    Case("model folder missing its weights", judgments=J, command="evaluate", args=["--no-bm25", "--model", "MODELDIR"],
         fragments=["model"]),
    Case("model name that is neither alias, folder nor reachable hub id", judgments=J, command="evaluate",
         args=["--no-bm25", "--model", "no-such/model-xyz"], fragments=["no-such/model-xyz", "alias"]),
    Case("Qdrant URL refusing connections", judgments=J, command="evaluate",
         args=["--no-bm25", "--qdrant-url", "http://127.0.0.1:9"], fragments=["Qdrant", "127.0.0.1:9"]),
]


def _materialize(case: Case, tmp_path: Path) -> list[str]:
    catalog = tmp_path / case.catalog_name
    if case.catalog == "FOLDER":
        catalog.mkdir()
    elif case.catalog is not None:
        catalog.write_bytes(case.catalog.encode("utf-8") if isinstance(case.catalog, str) else case.catalog)
    argv = [case.command, str(catalog)]
    if case.judgments is not None:
        judgments = tmp_path / case.judgments_name
        judgments.write_bytes(case.judgments.encode("utf-8") if isinstance(case.judgments, str) else case.judgments)
        argv += ["--judgments", str(judgments)]
    for arg in case.args:
        if arg.startswith("CONFIG::"):
            config = tmp_path / "config.yaml"
            config.write_text(arg.removeprefix("CONFIG::"))
            arg = str(config)
        elif arg == "MODELDIR":  # a model folder with its config but without weights or tokenizer
            (tmp_path / "model").mkdir()
            (tmp_path / "model" / "config.json").write_text('{"model_type": "bert"}')
            arg = str(tmp_path / "model")
        elif arg == "OUTFILE":
            (tmp_path / "taken").write_text("a file, not a folder")
            arg = str(tmp_path / "taken")
        argv.append(arg)
    if case.command == "evaluate" and "--output" not in case.args:
        argv += ["--output", str(tmp_path / "out")]
    return argv


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, capsys):
    argv = _materialize(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    code, stdout, stderr = run_cli(capsys, *argv)
    text = stdout + stderr
    assert "Traceback" not in text
    if case.expect == "error":
        assert code == 2, text
        lines = [line for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], stderr  # one line, and the last word
        assert "Fix:" in errors[0], errors[0]
        for fragment in case.fragments:
            assert fragment in errors[0], (fragment, errors[0])
    else:
        assert code == 0, text
        flat = " ".join(text.split())
        for fragment in case.fragments:
            assert fragment in flat, (fragment, flat[:2000])


def test_every_case_names_what_it_expects():
    """A case without fragments passes on any error (or any success): each must name at least one, and the
    names must be distinct so that every case runs under its own id."""
    vague = [c.name for c in CASES if not c.fragments]
    assert vague == [], f"cases that name no expected fragment: {vague}"
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)

