"""The studio's Evaluate page: any finished run's model or base model on a judged file under an allowed root (or
uploaded), as ``sparsefit evaluate`` does it, in a background job; the report kept in the workspace.

Endpoints: ``POST /api/evaluations`` (start; 400 bad input, 403 a path outside the roots, 404 an unknown run, 409
a run that has not finished or a name taken), ``GET /api/evaluations`` (all, newest first), ``GET
/api/evaluations/{id}`` (state, progress, log and, once done, the report with the CLI's table), ``POST
/api/evaluations/{id}/cancel`` and ``DELETE /api/evaluations/{id}`` (its folder and record; 409 while it runs).

Example:
    >>> app.include_router(router(studio))   # doctest: +SKIP
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sparsefit.errors import SparsefitError
from sparsefit.evaluation.metrics import METRICS
from sparsefit.evaluation.report import _HEADERS as HEADERS  # the CLI table's column names
from sparsefit.files import read_json
from sparsefit.run import RunFolder, exported
from sparsefit.serving.job_options import check_base_model
from sparsefit.serving.jobs import NAME
from sparsefit.serving.studio import Studio, http_errors, not_found

MAX_MODELS = 8  # one evaluation indexes the whole catalog once per model


class EvaluationRequest(BaseModel):
    catalog: str = Field(..., max_length=4096, description="catalog file under an allowed root")
    judgments: str = Field(..., max_length=4096, description="judged queries under an allowed root")
    models: list[str] = Field(default_factory=list, max_length=MAX_MODELS,
                              description="base models: offline aliases or model folders under an allowed root")
    runs: list[str] = Field(default_factory=list, max_length=MAX_MODELS, description="finished runs whose models to evaluate")
    name: str | None = Field(None, description="the evaluation's folder name (default eval-<time>-<hex>); 409 if taken")
    split_run: str | None = Field(
        None, description="reuse this run's query split (split.json): its held-out queries, none it trained on")
    options: dict[str, Any] | None = Field(None, description="bm25 (true), retrieval (sparse|bm25|hybrid), test_fraction, seed")


def model_system(model: str) -> str:
    """The name the report gives a model: an alias as is, a saved model its own (sparsefit.json), else its path."""
    folder = Path(model)
    meta = folder / "sparsefit.json"
    if folder.is_absolute() and meta.is_file():
        try:
            name = read_json(meta).get("name")
        except (SparsefitError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            return name
    return model


def run_about(folder: Path) -> str | None:
    """Which model of the run is evaluated, in words: its exported system and its base model ("round 1, tuned from
    splade-tiny"); None when the run's files do not say."""
    import yaml

    from sparsefit.serving.app import final_system

    parts = []
    try:
        final = final_system(RunFolder(folder).systems())
        parts += [final["name"]] if final else []
    except SparsefitError:
        pass
    try:
        base = (yaml.safe_load(RunFolder(folder).config.read_text(encoding="utf-8")) or {}).get("base_model")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        base = None
    if isinstance(base, str) and base:
        parts.append(f"tuned from {Path(base).name if Path(base).is_absolute() else base}")
    return ", ".join(parts) or None


def report_table(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the CLI prints it (`sparsefit evaluate`): its title, columns and rows, cell for cell."""
    baseline, reference = report.get("baseline"), report.get("reference")
    columns = ["system", *(HEADERS.get(m, m) for m in METRICS), f"nDCG@10 vs {baseline}", "p (paired)"]
    if reference is not None:
        columns.append(f"p vs {reference.split(',')[0]}")
    columns.append("seconds")
    rows = []
    for system in report.get("systems", []):
        row = [system["name"], *(f"{system['metrics'][m]:.4f}" for m in METRICS)]
        if system["name"] == baseline:
            row += ["1.000×", ""]
        else:
            ratio = system.get("ndcg@10_vs_baseline")
            row += [f"{ratio if ratio is not None else math.nan:.3f}×",
                    f"{(system.get('paired_test_vs_baseline') or {}).get('p_value', math.nan):.3g}"]
        if reference is not None:
            versus = system.get("paired_test_vs_reference") or {}
            row.append(f"{versus.get('p_value', math.nan):.3g}" if system["name"] != reference else "")
        row.append(f"{sum((system.get('seconds') or {}).values()):.1f}")
        rows.append(row)
    title = f"Held-out evaluation: {report.get('test_queries', 0):,} test queries, {report.get('catalog_size', 0):,} products"
    return {"title": title, "columns": columns, "rows": rows}


def router(studio: Studio) -> APIRouter:
    api = APIRouter()
    manager = studio.evaluations

    def view(job: dict[str, Any], *, detail: bool = False) -> dict[str, Any]:
        out = {**job, "progress": manager.progress(job), "report": None, "problem": None}
        try:
            report = manager.report(job) if job["status"] == "finished" else None
        except SparsefitError as exc:
            out["problem"] = f"its report.json cannot be read ({exc.message})"
            report = None
        if report is not None:
            labels = {m["system"]: m["about"] for m in job["models"] if m.get("about")}  # which of the run's models
            out["report"] = {**report_table(report), "label_scheme": report.get("label_scheme"),
                             "labels": {s["name"]: labels[s["name"]] for s in report["systems"] if s["name"] in labels},
                             "best": max(report["systems"], key=lambda s: s["metrics"]["ndcg@10"])["name"]}
            if not detail:  # the list shows the best system only
                out["report"] = {"best": out["report"]["best"], "best_ndcg": max(s["metrics"]["ndcg@10"] for s in report["systems"])}
        if detail:
            out["log"] = manager.log(job["id"], 60)
        return out

    def job(job_id: str) -> dict[str, Any]:
        try:
            return manager.get(job_id)
        except KeyError:
            raise not_found("evaluation", job_id) from None

    @api.post("/api/evaluations", status_code=201)
    def start_evaluation(request: EvaluationRequest) -> dict[str, Any]:
        """Evaluate models on held-out judged queries (`sparsefit evaluate` in a child process), or queue it while
        a training run or another evaluation has the cores."""
        catalog = studio.file(request.catalog, "catalog")
        judgments = studio.file(request.judgments, "judgments")
        models: list[dict[str, Any]] = []
        with http_errors():
            for value in request.models:
                if not value.strip():
                    raise HTTPException(400, "a model is an empty name; give an offline alias or a model folder")
                model = check_base_model(value.strip(), studio.roots)
                models.append({"model": model, "label": value.strip(), "system": model_system(model)})
            for name in request.runs:
                folder = studio.runs.folder(name)
                if not exported(folder):
                    raise HTTPException(409, f"run {name!r} has not finished; evaluate it once it has exported its model")
                # named after the run in the report (tasks.EvaluationJobs._named): its model keeps its base model's name
                models.append({"model": str(RunFolder(folder).model), "label": f"run {name}", "system": f"run {name}",
                               "run": name, "about": run_about(folder)})
            seen: dict[str, str] = {}
            for model in models:
                if model["label"] in seen.values():
                    raise HTTPException(400, f"{model['label']} is listed twice")
                if model["system"] in seen:
                    raise HTTPException(400, f"{seen[model['system']]} and {model['label']} would both be named "
                                             f"{model['system']!r} in the report; evaluate them separately")
                seen[model["system"]] = model["label"]
            split = None
            if request.split_run:
                split = RunFolder(studio.runs.folder(request.split_run)).split
                if not split.is_file():
                    raise HTTPException(409, f"run {request.split_run!r} has no query split yet (split.json)")
            return view(manager.start_evaluation(catalog=catalog, judgments=judgments, models=models, name=request.name,
                                                 options=request.options or {}, split=split))

    @api.get("/api/evaluations")
    def list_evaluations() -> dict[str, Any]:
        return {"evaluations": [view(j) for j in manager.list()]}

    @api.get("/api/evaluations/{job_id}")
    def evaluation(job_id: str) -> dict[str, Any]:
        return view(job(job_id), detail=True)

    @api.post("/api/evaluations/{job_id}/cancel")
    def cancel_evaluation(job_id: str) -> dict[str, Any]:
        job(job_id)
        return view(manager.cancel(job_id))

    @api.delete("/api/evaluations/{job_id}")
    def delete_evaluation(job_id: str) -> dict[str, Any]:
        """Remove an evaluation that has ended: its folder (report and indexes) and its record."""
        found = job(job_id)
        if found["status"] in ("queued", "running"):
            raise HTTPException(409, f"evaluation {found['run']!r} is {found['status']}; cancel it first")
        with manager._lock:
            if NAME.fullmatch(str(found["run"])):  # a job file may be edited: never a path out of evaluations/
                shutil.rmtree(manager.runs / found["run"], ignore_errors=True)
            for suffix in (".json", ".log"):
                (manager.folder / f"{job_id}{suffix}").unlink(missing_ok=True)
        return {"deleted": found["run"]}

    return api
