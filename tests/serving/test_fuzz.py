"""Fuzz the HTTP API from its own OpenAPI schema (Schemathesis): no request may get a 5xx.

Two passes over a copy of the tiny run: ``serve`` (``create_app([run])``, no token) and ``studio``
(``create_app([run], workspace=…, allowed_roots=[a folder with one catalog], token=…)``, the bearer token on every
request). Each API operation gets Schemathesis' positive cases (valid by the schema) and negative ones
(invalid), with a fixed seed (``derandomize``) and a bounded number of examples. Positive cases are
steered a little toward the served data (the run's name, real product ids and queries, payload filters
of every shape and edge value), so the requests reach the search code instead of stopping at a 404.

Checked: no 5xx response and no exception out of the app (what a server turns into a 500); every 4xx
is JSON with a ``detail`` string; and at least MIN_REQUESTS requests were made in all, counted where
they are sent. A failure lists each offending request as a curl command with its traceback or body.

POST /api/jobs is fuzzed too: the allowed root holds one real catalog (so the options and the base model
are checked) and the job module's process start is replaced by one that fails, so no training can begin.
"""

from __future__ import annotations

import csv
import json
import shutil
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis  # the dev extra installs it (with Hypothesis)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from sparsefit.serving.app import create_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE_URL = "http://127.0.0.1"  # without a token the service answers loopback hosts only
TOKEN = "fuzz-" + "t" * 27  # 32 characters (tokens under 16 are refused)
MIN_REQUESTS = 1000
# Examples per operation and generation mode (operations with nothing to vary get fewer), and for the
# serve pass's extra run of POST /search with a payload filter on every request.
EXAMPLES_PER_MODE = {"serve": 40, "studio": 28}
FILTER_EXAMPLES = 150
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)

SETTINGS = settings(
    max_examples=1,  # replaced per pass
    derandomize=True,  # the seed comes from this file's code: the same requests on every run
    database=None,  # no .hypothesis folder, nothing replayed from earlier runs
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


# --------------------------------------------------------------------------- steering


def _catalog() -> tuple[list[str], list[str]]:
    with (EXAMPLES / "catalog.csv").open(encoding="utf-8") as handle:
        ids = [row["sku"] for row in csv.DictReader(handle)]
    with (EXAMPLES / "judged_queries.csv").open(encoding="utf-8") as handle:
        queries = list(dict.fromkeys(row["query"] for row in csv.DictReader(handle)))
    return ids[:40], queries[:40]


PRODUCT_IDS, QUERIES = _catalog()
RUN_IN_BODY = {"POST /search", "POST /explain", "POST /rules"}  # their bodies name the run; others take ?run=
FIELDS = st.sampled_from(["brand", "price", "in_stock", "category", "title", "sku", "_id"])
ODD_KEYS = st.sampled_from(["$other", "", " ", "a b", "a.b", "brand[]", "brand[0]", '"in stock"', "price..x", "[",
                            "not", "gt", "a:b", "\U0001F600"]) | st.text(max_size=6)
NUMBERS = (st.integers() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)  # JSON has no NaN
           | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**400, -(10**400), 0, -0.0, 1e308, 5e-324]))
SCALARS = (st.none() | st.booleans() | NUMBERS | st.text(max_size=10)
           | st.sampled_from(["Boltworth", "Torvane", "Power Tools", "PT-0005", "42"]))
BASE_MODELS = st.sampled_from(["splade-tiny", "~nosuchuser/m", "a\x00b", "x" * 300, "../outside", "/etc", "org/model",
                               "catalog.csv", ""]) | st.text(max_size=12)
RANGES = st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), NUMBERS, min_size=1, max_size=2) | st.dictionaries(
    st.sampled_from(["gt", "gte", "lt", "lte", "eq", "not"]), SCALARS, max_size=3)
VALUES = SCALARS | st.lists(SCALARS, max_size=4) | RANGES | st.fixed_dictionaries({"not": SCALARS | st.lists(SCALARS, max_size=3)})
# Mostly one or two conditions on real fields (so a filter gets past the parser to the engine), some odd keys.
FILTERS = (st.dictionaries(FIELDS, VALUES, min_size=1, max_size=2)
           | st.dictionaries(FIELDS | ODD_KEYS, VALUES, max_size=3)
           | st.fixed_dictionaries({"$exclude_ids": st.lists(st.sampled_from(PRODUCT_IDS) | SCALARS, max_size=5)}))


@dataclass
class Pass:
    """What one fuzz pass sent and got back."""

    name: str
    run: str
    requests: Counter = field(default_factory=Counter)  # per operation
    statuses: Counter = field(default_factory=Counter)  # per (operation, status)
    server_errors: list[str] = field(default_factory=list)
    bad_4xx: list[str] = field(default_factory=list)
    rule_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def _steer(case: Any, draw: Any, fuzz: Pass) -> None:
    """Point part of a valid case at real data: the served run, real ids and queries, filters of every shape."""
    label = case.operation.label
    body = case.body if isinstance(case.body, dict) else None
    run = draw(st.sampled_from(["keep", "default", "name"]))  # as generated, the default run, or its name
    if run != "keep":
        if "run" in _param_names(case, "query"):
            case.query = case.query if isinstance(case.query, dict) else {}
        for params in (body if label in RUN_IN_BODY else None, case.query if "run" in _param_names(case, "query") else None):
            if params is not None:
                params.pop("run", None)
                if run == "name":
                    params["run"] = fuzz.run
    if body is not None:
        if "query" in body and draw(st.booleans()):
            body["query"] = draw(st.sampled_from(QUERIES))
        if "product_id" in body and draw(st.booleans()):
            body["product_id"] = draw(st.sampled_from(PRODUCT_IDS))
        if label == "POST /search" and draw(st.booleans()):
            body["filter"] = draw(FILTERS)
    path = case.path_parameters or {}
    if "product_id" in path and draw(st.booleans()):
        path["product_id"] = draw(st.sampled_from(PRODUCT_IDS))
    if "name" in path and draw(st.booleans()):
        path["name"] = fuzz.run
    if label == "POST /api/jobs" and body is not None and draw(st.booleans()):
        body["catalog"] = "catalog.csv"  # the one real catalog under the allowed root: the options get checked
        if draw(st.booleans()):
            body["options"] = {"base_model": draw(BASE_MODELS), **draw(st.dictionaries(
                st.sampled_from(["rounds", "seed", "epochs", "negatives"]), SCALARS, max_size=2))}
    if "rule_id" in path and fuzz.rule_ids and draw(st.booleans()):
        path["rule_id"] = fuzz.rule_ids[draw(st.integers(0, 10**6)) % len(fuzz.rule_ids)]


def _param_names(case: Any, where: str) -> set[str]:
    raw = case.operation.definition.raw
    return {p.get("name") for p in raw.get("parameters", []) if p.get("in") == where}


# --------------------------------------------------------------------------- the passes


def _fuzz(app: Any, fuzz: Pass, headers: dict[str, str], examples: int, filter_examples: int = 0) -> Pass:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers={"host": "127.0.0.1", **headers})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema lists no operations"
    for operation in operations:
        for mode in MODES:
            _fuzz_operation(operation, mode, fuzz, headers, examples)
        if operation.label == "POST /search" and filter_examples:
            _fuzz_operation(operation, GenerationMode.POSITIVE, fuzz, headers, filter_examples, filters=True)
    return fuzz


def _fuzz_operation(operation: Any, mode: GenerationMode, fuzz: Pass, headers: dict[str, str], examples: int,
                    *, filters: bool = False) -> None:
    @st.composite
    def cases(draw):
        if filters:  # a real query on the served run, with a filter of any shape
            body = {"query": draw(st.sampled_from(QUERIES)), "limit": draw(st.integers(1, 50)), "filter": draw(FILTERS)}
            return operation.Case(body=body, media_type="application/json")
        case = draw(operation.as_strategy(generation_mode=mode))
        if mode is GenerationMode.POSITIVE:
            _steer(case, draw, fuzz)
        return case

    @settings(SETTINGS, max_examples=examples)
    @given(case=cases())
    def send(case):
        request = f"[{fuzz.name}, {mode.value}] {case.as_curl_command(headers=headers, base_url=BASE_URL)}"
        fuzz.requests[operation.label] += 1  # the count of requests made: one per call below
        try:
            response = case.call(base_url=BASE_URL, headers=headers)
        except Exception:  # the app raised (a server answers that with a 500), or it timed out
            fuzz.statuses[(operation.label, "exception")] += 1
            fuzz.server_errors.append(f"{request}\n  -> exception\n{traceback.format_exc()}")
            return
        status = response.status_code
        fuzz.statuses[(operation.label, status)] += 1
        if status >= 500:
            fuzz.server_errors.append(f"{request}\n  -> {status} {response.text[:500]}")
        elif status >= 400 and (problem := _detail_problem(response)):
            fuzz.bad_4xx.append(f"{request}\n  -> {status} {problem}: {response.text[:200]}")
        elif operation.label == "POST /rules" and status == 201:
            fuzz.rule_ids.append(response.json()["id"])

    try:
        send()
    except Unsatisfiable:  # nothing invalid to send (e.g. a negative case of GET /health)
        assert mode is GenerationMode.NEGATIVE, f"no positive case for {operation.label}"


def _detail_problem(response: Any) -> str | None:
    content_type = response.headers.get("content-type") or [""]  # Schemathesis: a list of values per header
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if "json" not in content_type:
        return f"content-type {content_type!r}, not JSON"
    try:
        body = json.loads(response.content)
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict) or not isinstance(body.get("detail"), str):
        return "no 'detail' string"
    return None


@pytest.fixture(scope="module")
def fuzz_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run: fuzzed rules and the fitted confidence stay out of the shared one."""
    copy = tmp_path_factory.mktemp("fuzz") / tiny_run.name
    shutil.copytree(tiny_run, copy)
    return copy


@pytest.fixture(scope="module")
def serve_pass(fuzz_run) -> Pass:
    app = create_app([fuzz_run])
    try:
        return _fuzz(app, Pass("serve", fuzz_run.name), {}, EXAMPLES_PER_MODE["serve"], FILTER_EXAMPLES)
    finally:
        app.state.runs.close()


@pytest.fixture(scope="module")
def studio_pass(fuzz_run, tmp_path_factory) -> Pass:
    import sparsefit.serving.jobs as jobs_module

    class NoProcesses:
        """Stands in for the subprocess module in the jobs module: a job that passes every check fails to start
        (as when the system cannot start a process) instead of training."""

        STDOUT = -2

        @staticmethod
        def Popen(argv, *args, **kwargs):  # noqa: N802
            raise OSError("no processes in the fuzz test")

    root = tmp_path_factory.mktemp("fuzz-allowed-root")  # one real catalog: job options get checked too
    shutil.copyfile(EXAMPLES / "catalog.csv", root / "catalog.csv")
    workspace = tmp_path_factory.mktemp("fuzz-workspace")
    app = create_app([fuzz_run], workspace=workspace, allowed_roots=[root], token=TOKEN)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(jobs_module, "subprocess", NoProcesses)
            return _fuzz(app, Pass("studio", fuzz_run.name), {"Authorization": f"Bearer {TOKEN}"},
                         EXAMPLES_PER_MODE["studio"])
    finally:
        app.state.runs.close()


# --------------------------------------------------------------------------- the checks


def _report(items: list[str], limit: int = 40) -> str:
    shown = "\n\n".join(items[:limit])
    return f"{len(items)} found:\n\n{shown}" + (f"\n\n… and {len(items) - limit} more" if len(items) > limit else "")


def _summary(fuzz: Pass) -> str:
    lines = [f"{fuzz.name}: {fuzz.total} requests"]
    for label, count in sorted(fuzz.requests.items()):
        statuses = ", ".join(f"{s}×{n}" for (op, s), n in sorted(fuzz.statuses.items(), key=str) if op == label)
        lines.append(f"  {label}: {count} ({statuses})")
    return "\n".join(lines)


def test_serve_api_never_answers_5xx(serve_pass):
    print(_summary(serve_pass))
    assert not serve_pass.server_errors, _report(serve_pass.server_errors)


def test_studio_api_never_answers_5xx(studio_pass):
    print(_summary(studio_pass))
    assert not studio_pass.server_errors, _report(studio_pass.server_errors)


def test_every_4xx_is_json_with_a_detail_string(serve_pass, studio_pass):
    bad = serve_pass.bad_4xx + studio_pass.bad_4xx
    assert not bad, _report(bad)


def test_the_fuzz_made_enough_requests_to_every_operation(serve_pass, studio_pass):
    total = serve_pass.total + studio_pass.total
    assert total >= MIN_REQUESTS, f"only {total} requests:\n{_summary(serve_pass)}\n{_summary(studio_pass)}"
    assert len(studio_pass.requests) > len(serve_pass.requests) >= 5, "operations missing from a pass"
    assert "POST /api/jobs" in studio_pass.requests and "POST /search" in serve_pass.requests
    # The steering reached the search itself, not only its 4xx answers.
    assert serve_pass.statuses[("POST /search", 200)] >= 10 and studio_pass.statuses[("POST /search", 200)] >= 10
