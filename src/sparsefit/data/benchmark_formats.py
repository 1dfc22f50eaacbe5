"""Public benchmark layouts, read as a catalog and judgments: BEIR folders and TREC qrels.

So that a model can be checked on a public benchmark with one command
(``sparsefit evaluate beir/scifact --judgments beir/scifact``):

- a **BEIR folder** (``corpus.jsonl`` of ``{"_id", "title", "text"}``, ``queries.jsonl`` of ``{"_id",
  "text"}``, ``qrels/<split>.tsv``): given as the catalog it means its ``corpus.jsonl``; given as the
  judgments, ``qrels/test.tsv`` (or its only qrels file);
- **BEIR qrels** (``query-id  corpus-id  score`` with that header, tab-separated) and **TREC qrels**
  (``query-id  iteration  doc-id  relevance`` per line, whitespace-separated, no header) are detected by
  their first line. Both name queries by id: the texts come from the queries file beside them or one
  folder up (``queries.jsonl`` as in BEIR, or ``queries.tsv`` / ``topics.tsv`` of ``id<TAB>text``).

They become an ordinary judgments table (``query``, ``doc_id``, ``relevance``), so unknown products and errors
are handled as for any other file; errors name the qrels file and its line. Graded qrels keep their
convention: gain = the grade, relevant from 1 on (:func:`qrels_scheme`).

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "queries.tsv").write_text("q1\\tcordless drill\\n")
    >>> _ = (folder / "run.qrels").write_text("q1 0 D7 2\\nq1 0 D9 0\\n")
    >>> table = qrels_table(folder / "run.qrels")
    >>> table.frame.values.tolist(), table.rows.tolist()
    ([['cordless drill', 'D7', '2'], ['cordless drill', 'D9', '0']], [1, 2])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sparsefit.data.labels import LabelScheme
from sparsefit.data.table import Table
from sparsefit.errors import SparsefitError

BEIR_HEADER = ("query-id", "corpus-id", "score")
QUERY_FILES = ("queries.jsonl", "queries.tsv", "topics.tsv")
COLUMNS = ("query", "doc_id", "relevance")


def catalog_file(path: Path) -> Path:
    """``path``, or the ``corpus.jsonl`` of a BEIR folder."""
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return path / "corpus.jsonl"
    return path


def judgments_file(path: Path) -> Path:
    """``path``, or the test qrels of a BEIR folder (its only qrels file when there is no ``test.tsv``)."""
    if not (path.is_dir() and (path / "qrels").is_dir()):
        return path
    found = sorted((path / "qrels").glob("*.tsv"))
    if (path / "qrels" / "test.tsv").is_file():
        return path / "qrels" / "test.tsv"
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise SparsefitError(f"the BEIR folder has no qrels/test.tsv (qrels files: {names})", file=path,
                         hint="pass the qrels file to use, e.g. --judgments FOLDER/qrels/dev.tsv")


def qrels_kind(path: Path, encoding: str | None = None) -> str | None:
    """``"beir"`` or ``"trec"`` when the file's first lines are qrels lines of that kind, else None."""
    if path.suffix.lower() not in (".tsv", ".txt", ".qrels", "") or not path.is_file():
        return None
    with path.open("rb") as stream:
        head = stream.read(8192)
    try:
        lines = [line.strip() for line in head.decode(encoding or "utf-8-sig").removeprefix("\ufeff").splitlines()]
    except (UnicodeDecodeError, LookupError):
        return None  # the table reader says what is wrong with the bytes
    lines = [line for line in lines[:-1] or lines if line][:5]  # (the last may be cut off by the 8 KB read)
    if not lines:
        return None
    if tuple(f.strip().lower() for f in lines[0].split("\t")) == BEIR_HEADER:
        return "beir"
    # TREC: query id, iteration (0, Q0, 0.5 ...), doc id, relevance; no header
    if all(len(f := line.split()) == 4 and _number(f[3]) and (_number(f[1]) or f[1].upper() == "Q0") for line in lines):
        return "trec"
    return None


def qrels_table(path: Path, encoding: str | None = None) -> Table:
    """The qrels file as a judgments table (query text, doc id, relevance); each row keeps its line number.

    Queries are keyed by their text, as in every judgments file: two query ids with the same text become one
    query (their judgments merge as duplicates do, see ``on_conflict``)."""
    kind = qrels_kind(path, encoding)
    if kind is None:
        raise SparsefitError("not a BEIR or TREC qrels file", file=path,
                             hint="BEIR: 'query-id<TAB>corpus-id<TAB>score' header; TREC: 'qid 0 docid relevance' lines")
    texts, source = _query_texts(path, encoding)
    rows, records = [], []
    for number, line in enumerate(_text(path, encoding).splitlines(), start=1):
        fields = line.split("\t") if kind == "beir" else line.split()
        if not line.strip() or (kind == "beir" and number == 1):
            continue
        if len(fields) != (3 if kind == "beir" else 4):
            raise SparsefitError(f"line {number} has {len(fields)} fields, a {kind.upper()} qrels line has "
                                 f"{3 if kind == 'beir' else 4}", file=path, hint="fix or remove the line")
        query_id, doc_id, label = (fields[0], fields[1], fields[2]) if kind == "beir" else (fields[0], fields[2], fields[3])
        if query_id.strip() not in texts:
            raise SparsefitError(f"line {number}: query id {query_id.strip()!r} is not in {source.name}", file=path,
                                 hint=f"add it to {source}, or remove its judgments")
        records.append((texts[query_id.strip()], doc_id.strip(), label.strip()))
        rows.append(number)
    frame = pd.DataFrame(records, columns=list(COLUMNS), dtype=object) if records else pd.DataFrame(columns=list(COLUMNS))
    return Table(frame, np.asarray(rows, dtype=np.int64), path, "tsv")


def qrels_scheme(table: Table) -> LabelScheme | None:
    """The qrels convention for graded labels: gain = the grade, relevant from 1 on (0 is judged not relevant);
    None for labels that are not all numbers of 0 or more, or only 0/1 (detected as binary as usual)."""
    values = [_number_or_none(v) for v in table.frame[COLUMNS[2]].tolist()]
    if not values or any(v is None or v < 0 for v in values) or max(values) <= 1:
        return None
    return LabelScheme("graded", {}, 1.0, low=0.0, high=max(values))


def _number_or_none(text: str) -> float | None:
    return float(text) if _number(text) else None


def _text(path: Path, encoding: str | None) -> str:
    """The file's text (UTF-8 with or without BOM, or ``encoding``); undecodable bytes are a clear error."""
    from sparsefit.data.decoding import decode
    from sparsefit.data.raw import read_bytes

    return decode(read_bytes(path, None), path, encoding, "tsv")


def _query_texts(qrels: Path, encoding: str | None) -> tuple[dict[str, str], Path]:
    """Query id → text from the queries file beside the qrels file or one folder up."""
    for folder in (qrels.parent, qrels.parent.parent):
        for name in QUERY_FILES:
            candidate = folder / name
            if candidate.is_file():
                read = _jsonl_queries if name.endswith(".jsonl") else _tsv_queries
                return read(candidate, _text(candidate, encoding)), candidate
    raise SparsefitError("qrels name queries by id, and no queries file was found beside it or one folder up", file=qrels,
                         hint=f"put the query texts in {' or '.join(QUERY_FILES)} (BEIR's {{\"_id\", \"text\"}} lines, "
                              "or id<TAB>text lines)")


def _jsonl_queries(path: Path, text: str) -> dict[str, str]:
    texts = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            texts[str(record["_id"])] = str(record["text"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise SparsefitError(f"line {number} is not a query object with \"_id\" and \"text\"", file=path,
                                 hint='write one {"_id": "q1", "text": "..."} per line') from None
    return texts


def _tsv_queries(path: Path, text: str) -> dict[str, str]:
    texts = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        query_id, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise SparsefitError(f"line {number} is not 'id<TAB>text'", file=path, hint="write one query id, a tab and its text per line")
        texts[query_id.strip()] = text.strip()
    return texts


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
