"""The FastAPI app behind ``sparsefit serve`` (search API) and ``sparsefit studio`` (the same API plus
the web page, training jobs and uploads).

Security: it binds 127.0.0.1 unless told otherwise; with a token every endpoint needs it (bearer
header, or the cookie the studio page gets from ``/studio?token=…``); uploads are size-limited and
stored under the workspace; paths given to the studio must lie under an allowed root.

Example:
    >>> app = create_app(runs=[Path("runs/demo")])          # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from sparsefit.errors import SparsefitError
from sparsefit.files import read_json
from sparsefit.run import RunFolder, finished_stages
from sparsefit.serving.guard import install_guard
from sparsefit.serving.registry import Runs
from sparsefit.serving.rules import MAX_ANCHOR_CHARS

STATIC = Path(__file__).parent / "static"
MAX_LISTED = 500  # files listed by /api/files
MAX_WALKED = 20_000  # folder entries /api/files looks at before it stops (then "truncated")
DATA_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".gz", ".bz2", ".xz")


class FeedbackItem(BaseModel):
    product_id: str = Field(..., min_length=1, max_length=1000)
    score: float = Field(..., allow_inf_nan=False, description="clicked = 1, skipped = 0")


class SearchRequest(BaseModel):
    query: str = Field(..., description="the search text", examples=["cordless drill"])
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10_000)
    filter: dict[str, Any] | None = Field(None, description='payload filter, e.g. {"brand": "Acme", "price": {"lt": 50}}')
    run: str | None = Field(None, description="run name (default: the served run)")
    rules: bool = Field(True, description="apply the collection's exclusion rules")
    retrieval: Literal["sparse", "bm25", "dense", "hybrid", "hybrid-dense"] = Field(
        "sparse", description="the tuned model, Qdrant's BM25, or both fused in one Qdrant query (the run's fitted weights); "
                              "a run trained with --dense also has dense and hybrid-dense (all three fused)")
    feedback: list[FeedbackItem] | None = Field(
        None, max_length=100, description="feedback on earlier hits (Qdrant's relevance-feedback query), e.g. clicked = 1, skipped = 0")
    boost: dict[str, Any] | None = Field(
        None, description='business boost: score · (1 + Σ weight · field) over numeric or true/false payload fields, e.g. {"in_stock": 0.5, "popularity": 0.1}')


class ExplainRequest(BaseModel):
    query: str
    product_id: str = Field(..., max_length=1000)
    run: str | None = Field(None, max_length=200)
    top_k: int = Field(20, ge=1, le=200)


class RuleRequest(BaseModel):
    when: str = Field(..., max_length=MAX_ANCHOR_CHARS, description="anchor text A: the rule fires when the query is near it")
    exclude: str = Field(..., max_length=MAX_ANCHOR_CHARS, description="anchor text B: results near it are removed")
    when_threshold: float = Field(0.3, gt=0, le=1)
    exclude_ratio: float = Field(0.5, gt=0, le=1)
    exclude_limit: int = Field(200, ge=1, le=10_000)
    run: str | None = None


class JobRequest(BaseModel):
    """A studio job. ``options`` stays a plain object here so that JobManager checks it (jobs.JobOptions) with
    one 400 that names the option, unknown keys included, whoever calls it."""

    catalog: str = Field(..., description="catalog file under an allowed root")
    judgments: str | None = Field(None, description="judgments file under an allowed root (default: generated queries)")
    name: str | None = Field(None, description="run name (default run-<time>-<hex>); 409 if a run has it")
    options: dict[str, Any] | None = Field(
        default_factory=dict,
        description="training options (jobs.OPTIONS): rounds, base_model (offline alias or folder under an allowed "
                    "root), epochs, mining_epochs, negatives, train_batch_size, queries_per_product, query_products, "
                    "seed, search_posting_cap, learning_rate, architecture, llm_url and llm_model (generated queries, "
                    "without judgments); empty or null means the default: the studio's Settings, else sparsefit's")


def create_app(
    runs: list[Path] | None = None,
    *,
    workspace: Path | None = None,
    allowed_roots: list[Path] | None = None,
    token: str | None = None,
    max_upload_mb: int = 200,
    max_jobs: int = 1,
    device: str | None = None,
) -> FastAPI:
    """The search API over ``runs``; with a ``workspace`` also the studio (page, jobs, evaluations, collections,
    publishing, settings, uploads; at most ``max_jobs`` training jobs and evaluations run at once, the others wait
    queued). ``device``: where served runs encode queries."""
    from sparsefit.config import token_problem
    from sparsefit.serving import pages_collections, pages_evaluate, pages_publish, pages_settings
    from sparsefit.serving.studio import Studio

    if token is not None and (problem := token_problem(token)):
        raise SparsefitError(problem)
    registry = Runs([Path(r).resolve() for r in runs or []], workspace.resolve() if workspace else None, device)
    roots = list(dict.fromkeys([Path(r).resolve() for r in (allowed_roots or [])] + ([workspace.resolve()] if workspace else [])))
    studio = Studio.open(workspace.resolve(), roots=roots, runs=registry, max_jobs=max_jobs) if workspace else None
    jobs = studio.jobs if studio else None
    app = FastAPI(title="sparsefit", version="0.1.0",
                  description="Search a fine-tuned SPLADE model over its Qdrant collection; the studio trains and compares runs.")
    app.state.runs = registry

    install_guard(app, token=token, upload_limit=max_upload_mb * 1024 * 1024)

    @app.exception_handler(SparsefitError)
    async def input_error(_request: Request, exc: SparsefitError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": problems or "invalid request"}, status_code=422)

    # -- search API ------------------------------------------------------------------------
    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, and what is served."""
        out: dict[str, Any] = {"status": "ok", "runs": len(registry.folders()), "studio": jobs is not None}
        if registry.default:
            out["default_run"] = registry.service(None).info()
        return out

    @app.post("/search")
    def search(request: SearchRequest) -> dict[str, Any]:
        """Top products for a query: score, calibrated confidence, payload; filters and exclusion rules applied."""
        service = registry.service(request.run)
        result = service.search(request.query, limit=request.limit, offset=request.offset, filter=request.filter,
                                rules=request.rules, retrieval=request.retrieval,
                                feedback=[(f.product_id, f.score) for f in request.feedback or ()], boost=request.boost)
        result["run"] = service.folder.name
        return result

    @app.get("/products/{product_id}")
    def product(product_id: str, run: str | None = None) -> dict[str, Any]:
        """One product's payload."""
        found = registry.service(run).product(product_id)
        if found is None:
            raise HTTPException(404, f"no product with id {product_id!r}")
        return found

    @app.post("/explain")
    def explain(request: ExplainRequest) -> dict[str, Any]:
        """Why a product matches a query: term weights, expansion terms and shared terms, tuned beside base."""
        try:
            return registry.service(request.run).explain(request.query, request.product_id, top_k=request.top_k)
        except KeyError:
            raise HTTPException(404, f"no product with id {request.product_id!r}") from None

    @app.get("/rules")
    def list_rules(run: str | None = None) -> dict[str, Any]:
        """The collection's exclusion rules."""
        return {"rules": [vars(r) for r in registry.service(run).rules.list()]}

    @app.post("/rules", status_code=201)
    def add_rule(request: RuleRequest) -> dict[str, Any]:
        """Add an exclusion rule: when the query is near `when`, results near `exclude` are removed."""
        rule = registry.service(request.run).add_rule(
            request.when, request.exclude, when_threshold=request.when_threshold,
            exclude_ratio=request.exclude_ratio, exclude_limit=request.exclude_limit)
        return vars(rule)

    @app.delete("/rules/{rule_id}")
    def remove_rule(rule_id: str, run: str | None = None) -> dict[str, Any]:
        try:
            return vars(registry.service(run).remove_rule(rule_id))
        except KeyError:
            raise HTTPException(404, f"no rule with id {rule_id!r}") from None

    # -- runs (read-only; served and studio) -----------------------------------------------
    def running() -> set[str]:
        return {j["run"] for j in jobs.list() if j["status"] in ("running", "queued")} if jobs else set()

    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        busy = running()
        return {"runs": [run_summary(folder, busy) for folder in registry.folders().values()]}

    @app.get("/api/runs/{name}")
    def run_detail(name: str) -> dict[str, Any]:
        return describe_run(registry.folder(name), running())

    if studio is None or jobs is None:
        return app
    app.state.studio = studio
    for page in (pages_settings, pages_evaluate, pages_collections, pages_publish):
        app.include_router(page.router(studio))

    # -- studio ----------------------------------------------------------------------------
    app.mount("/studio/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/studio")

    @app.get("/studio", include_in_schema=False)
    def studio_page() -> FileResponse:
        return FileResponse(STATIC / "studio.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/files")
    def files() -> dict[str, Any]:
        """Data files under the allowed roots, to pick a catalog or judgments from (the first 500 found)."""
        found: list[dict[str, Any]] = []
        truncated = False
        skip = {workspace.resolve() / folder for folder in ("runs", "jobs", "evaluations", "exports")}
        for root in roots:
            if len(found) >= MAX_LISTED or any(root != other and root.is_relative_to(other) for other in roots):
                continue  # a root inside another root: its files are listed once, under the outer one
            more, cut = data_files(root, MAX_LISTED - len(found), skip)
            found += more
            truncated = truncated or cut
        return {"roots": [str(r) for r in roots], "files": found, "truncated": truncated}

    @app.post("/api/uploads")
    async def upload(file: UploadFile) -> dict[str, Any]:
        """Store an uploaded catalog or judgments file under the workspace (size-limited)."""
        name = safe_name(file.filename or "upload.csv")
        if not name.lower().endswith(DATA_SUFFIXES):
            raise HTTPException(400, f"{name}: not a data file; upload CSV, TSV, JSON, JSONL or Parquet")
        folder = workspace.resolve() / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{uuid.uuid4().hex[:8]}-{name}"
        limit, size = max_upload_mb * 1024 * 1024, 0
        with open(target, "wb") as out:
            while chunk := await file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    out.close()
                    target.unlink()
                    raise HTTPException(413, f"{name} is larger than the {max_upload_mb} MB upload limit; "
                                             "put it under an allowed root and pick it instead")
                out.write(chunk)
        return {"path": str(target), "name": name, "size": size}

    @app.post("/api/jobs", status_code=201)
    def start_job(request: JobRequest) -> dict[str, Any]:
        """Start a training run (`sparsefit train`) in the workspace, or queue it (status "queued") while others
        train. 400 bad option or name, 403 a path outside the allowed roots, 409 the run name is taken."""
        from sparsefit.serving.job_options import JobError, parse_options, under_roots

        try:
            catalog = under_roots(request.catalog, roots, "catalog", "file")
            if catalog is None:
                raise JobError(f"catalog file {request.catalog!r} does not exist")
            judgments = under_roots(request.judgments, roots, "judgments", "file") if request.judgments else None
            if request.judgments and judgments is None:
                raise JobError(f"judgments file {request.judgments!r} does not exist")
            defaults = studio.settings.training_defaults(with_llm=judgments is None)  # the LLM writes queries only without judgments
            options = {**defaults, **parse_options(request.options or {})}
            stored_url = studio.settings.stored()[0].get("llm_url")
            if options.get("llm_url") and options["llm_url"] != stored_url and studio.settings.secret("llm_api_key"):
                raise JobError("the stored LLM key goes only to the LLM URL saved with it in Settings",
                               hint="save this URL (and its key) in Settings, or leave llm_url empty to use the saved one")
            return jobs.start(catalog=catalog, judgments=judgments, name=request.name, options=options, allowed_roots=roots)
        except JobError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @app.get("/api/jobs")
    def list_jobs() -> dict[str, Any]:
        return {"jobs": jobs.list()}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        try:
            return {**jobs.get(job_id), "log": jobs.log(job_id)}
        except KeyError:
            raise HTTPException(404, f"no job {job_id!r}") from None

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        try:
            return jobs.cancel(job_id)
        except KeyError:
            raise HTTPException(404, f"no job {job_id!r}") from None

    @app.post("/api/jobs/{job_id}/resume")
    def resume(job_id: str) -> dict[str, Any]:
        """Continue a cancelled or failed job's run (`sparsefit train --resume`); 409 when there is nothing to resume."""
        from sparsefit.serving.job_options import JobError

        try:
            return jobs.resume(job_id)
        except KeyError:
            raise HTTPException(404, f"no job {job_id!r}") from None
        except JobError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    return app


def safe_name(name: str) -> str:
    """A file name with no directory part and only safe characters."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name.replace("\\", "/")).name).lstrip(".")
    return base[:100] or "upload"


def data_files(root: Path, limit: int, skip: set[Path], budget: int = MAX_WALKED) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` data files under ``root`` and whether the walk stopped early (at ``limit`` files or
    after ``budget`` entries, so a huge tree costs a bounded walk). Symbolic links are skipped (they would
    be refused when picked), as are hidden folders and the folders in ``skip`` (the studio's own runs/,
    jobs/ and uploads' model files)."""
    found: list[dict[str, Any]] = []
    walked = 0
    for folder, subfolders, names in os.walk(root, followlinks=False):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and here / d not in skip)
        walked += len(subfolders) + len(names)
        for name in sorted(names):
            path = here / name
            if not name.lower().endswith(DATA_SUFFIXES) or path.is_symlink():
                continue
            try:
                size = path.stat().st_size
            except OSError:
                continue
            found.append({"path": str(path), "name": str(path.relative_to(root)), "size": size})
            if len(found) >= limit:
                return found, True
        if walked >= budget:
            return found, True
    return found, False


def run_status(folder: Path, running: set[str]) -> tuple[str, list[str]]:
    """finished, running (a studio job is training it) or incomplete (stopped; `sparsefit train --resume` continues it)."""
    done = finished_stages(folder)
    if RunFolder.EXPORT in done:
        return "finished", done
    return ("running" if folder.name in running else "incomplete"), done


def run_summary(folder: Path, running: set[str]) -> dict[str, Any]:
    run = RunFolder(folder)
    status, _ = run_status(folder, running)
    sources = run.read_sources() if run.sources.is_file() else {}
    systems = run.systems()
    final = final_system(systems)
    bm25 = next((s for s in systems if s["role"] == "bm25"), None)
    return {"name": folder.name, "status": status, "catalog": sources.get("catalog"), "judgments": sources.get("judgments"),
            "final_ndcg": final["metrics"]["ndcg@10"] if final else None,
            "bm25_ndcg": bm25["metrics"]["ndcg@10"] if bm25 else None, "retrievals": run_retrievals(folder)}


def run_retrievals(folder: Path) -> list[str] | None:
    """The /search retrieval modes a run's Edge index can serve, from its metadata file (None when unknown: a
    server index, or no index yet)."""
    from sparsefit.index.edge import META_FILE

    meta_file = RunFolder(folder).index / META_FILE
    try:
        meta = read_json(meta_file) if meta_file.is_file() else None
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    lexical, dense = bool(meta.get("bm25")), bool(meta.get("dense_model"))
    return (["sparse"] + (["bm25"] if lexical else []) + (["dense"] if dense else []) + (["hybrid"] if lexical else [])
            + (["hybrid-dense"] if lexical and dense else []))


def describe_run(folder: Path, running: set[str]) -> dict[str, Any]:
    """Everything the studio charts, as data: stages (name, kind, round), timings, live training, losses per
    round, and the systems with their roles (bm25, base, round, average)."""
    run = RunFolder(folder)
    status, done = run_status(folder, running)
    systems = run.systems()
    return {"name": folder.name, "status": status, "done": done, "stages": run.describe_stages(),
            "timings": read_json(run.timings) if run.timings.is_file() else {},
            "live": read_json(run.live) if run.live.is_file() else None,
            "losses": run.training_losses(), "systems": systems, "final": (final_system(systems) or {}).get("name")}


def final_system(systems: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The exported model's system: the last tuned one (the rounds' average comes after the rounds)."""
    return next((s for s in reversed(systems) if s["role"] in ("round", "average")), None)
