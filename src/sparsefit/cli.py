"""The ``sparsefit`` command line: a thin typer layer over the Python API.

Every :class:`~sparsefit.errors.SparsefitError` and every usage error (unknown command or option, a
bad or missing value) becomes one line on stderr and exit code 2, never a traceback. ``--help`` and
``--version`` exit 0; ``sparsefit`` alone (or a command group alone, ``sparsefit rules``) prints the
help and exits 2, as a command line without a command is a usage error.

Example:
    $ sparsefit evaluate examples/catalog.csv --judgments examples/judged_queries.csv
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sparsefit.errors import EXIT_USAGE, SparsefitError
from sparsefit.progress import console

if TYPE_CHECKING:
    from sparsefit.config import Settings

app = typer.Typer(
    name="sparsefit",
    help="Fine-tune sparse neural retrievers (SPLADE) on your product catalog and serve them from Qdrant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("sparsefit")
        except PackageNotFoundError:  # running from a source tree that was never installed
            installed = "unknown (not installed)"
        typer.echo(f"sparsefit {installed}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


# -- options shared by the commands that read a catalog and judgments --------------------------
CatalogArg = Annotated[Path, typer.Argument(help="product catalog: CSV, TSV, JSON, JSONL or Parquet")]
JudgmentsOpt = Annotated[Optional[Path], typer.Option("--judgments", "-j", help="judged queries (query, product id, label)")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="settings file, YAML or TOML")]
IdFieldOpt = Annotated[Optional[str], typer.Option(help="catalog id column (default: detected)")]
TextFieldsOpt = Annotated[Optional[str], typer.Option(help="catalog text columns, comma-separated (default: detected)")]
TemplateOpt = Annotated[Optional[str], typer.Option(help='product text template, e.g. "{brand} {title}"')]
QueryFieldOpt = Annotated[Optional[str], typer.Option(help="judgments query column")]
JudgmentIdOpt = Annotated[Optional[str], typer.Option(help="judgments product id column")]
LabelFieldOpt = Annotated[Optional[str], typer.Option(help="judgments label column")]
SchemeOpt = Annotated[Optional[str], typer.Option(help="label scheme: esci, wands, graded or binary (default: detected)")]
GainOpt = Annotated[Optional[list[str]], typer.Option("--gain", help="gain of a label, LABEL=GAIN (repeatable)")]
ThresholdOpt = Annotated[Optional[float], typer.Option(help="gain at or above which a product counts as relevant")]
OnInvalidOpt = Annotated[Optional[str], typer.Option(help="bad rows: error (default) or skip (counted and reported)")]
OnUnknownOpt = Annotated[Optional[str], typer.Option(help="judged products missing from the catalog: drop (default) or error")]
OnConflictOpt = Annotated[Optional[str], typer.Option(help="a query/product judged twice with different labels: mean (default), first or error")]
EncodingOpt = Annotated[Optional[str], typer.Option(help="file encoding, e.g. latin-1 (default: UTF-8)")]


def _default(name: str) -> object:
    """A setting's default, for help texts (flags default to None = "not given")."""
    from sparsefit.config import Settings

    return Settings.model_fields[name].default


def _parse_gains(pairs: list[str] | None) -> dict[str, float] | None:
    if not pairs:
        return None
    gains = {}
    for pair in pairs:
        label, sep, value = pair.partition("=")
        try:
            gains[label.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not label.strip():
            raise SparsefitError(f"--gain '{pair}' is not LABEL=NUMBER", hint="write e.g. --gain E=1 --gain S=0.1")
    return gains


DATA_OPTIONS: dict[str, object] = {
    "config": ConfigOpt, "id_field": IdFieldOpt, "text_fields": TextFieldsOpt, "template": TemplateOpt,
    "query_field": QueryFieldOpt, "judgment_id_field": JudgmentIdOpt, "label_field": LabelFieldOpt,
    "scheme": SchemeOpt, "gain": GainOpt, "relevant_threshold": ThresholdOpt, "on_invalid": OnInvalidOpt,
    "on_unknown_product": OnUnknownOpt, "on_conflict": OnConflictOpt, "encoding": EncodingOpt,
}


def with_data_options(command):
    """Add the catalog/judgment reading options to ``command``; it receives them as ``config`` and ``data``
    (settings overrides: None means unset)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name not in ("config", "data")]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
             for name, annotation in DATA_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name, None) for name in DATA_OPTIONS}
        config = values.pop("config")
        values["gains"] = _parse_gains(values.pop("gain"))
        values["label_scheme"] = values.pop("scheme")
        return command(*args, config=config, data=values, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + extra)
    wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **DATA_OPTIONS}
    return wrapper


SearchPostingCapOpt = Annotated[Optional[int], typer.Option(
    help="two-stage search for large catalogs: a candidate index keeps each term's N heaviest products and the candidates "
         "are rescored exactly (e.g. 20000; default: exact search)")]


def _print_search_mode(settings: Settings) -> None:
    """Say when the numbers above come from approximate (two-stage) search."""
    if settings.search_posting_cap is not None:
        console.print(f"Searched two-stage (approximate): {settings.search_query_terms} query terms find "
                      f"{settings.search_candidates} candidates in posting lists capped at {settings.search_posting_cap:,} "
                      "products, rescored exactly. Leave out --search-posting-cap for exact search.")


@app.command()
@with_data_options
def evaluate(
    catalog: CatalogArg,
    judgments: JudgmentsOpt = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="model to evaluate: alias, folder or hub id (repeatable; default splade-tiny)")] = None,
    no_bm25: Annotated[bool, typer.Option("--no-bm25", help="skip the BM25 baseline")] = False,
    architecture: Annotated[Optional[str], typer.Option(help="splade or inference-free")] = None,
    test_judgments: Annotated[Optional[Path], typer.Option(help="held-out judgments file instead of a random split")] = None,
    split: Annotated[Optional[Path], typer.Option("--split", help="reuse a saved split.json")] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help=f"share of queries held out (default {_default('test_fraction')})")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {_default('seed')})")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="output folder (default runs/evaluate-<time>)")] = None,
    qdrant_url: Annotated[Optional[str], typer.Option(help="Qdrant server URL (API key from SPARSEFIT_QDRANT_API_KEY); default: Qdrant Edge in-process")] = None,
    search_posting_cap: SearchPostingCapOpt = None,
    batch_size: Annotated[Optional[int], typer.Option(help="encoding batch size")] = None,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Evaluate BM25 and sparse encoders on held-out judged queries over the whole catalog."""
    from sparsefit.config import load_settings
    from sparsefit.pipeline import run_evaluation

    if judgments is None:
        raise SparsefitError("evaluate needs judged queries", hint="pass --judgments FILE")
    settings = load_settings(
        config,
        models=model, bm25=False if no_bm25 else None, architecture=architecture, test_judgments=test_judgments,
        split_file=split, test_fraction=test_fraction, seed=seed, output=output, qdrant_url=qdrant_url,
        batch_size=batch_size, search_posting_cap=search_posting_cap, **data,
    )
    started = time.perf_counter()
    report, folder, inputs = run_evaluation(catalog, judgments, settings)
    _print_inputs(inputs)
    console.print(report.table(), soft_wrap=True)
    _print_search_mode(settings)
    console.print(f"Wall time {time.perf_counter() - started:.1f} s. Saved report.json, per_query.csv, runs.jsonl and split.json in {folder}/")


@app.command()
@with_data_options
def train(
    ctx: typer.Context,
    catalog: Annotated[Optional[Path], typer.Argument(help="product catalog: CSV, TSV, JSON, JSONL or Parquet")] = None,
    judgments: JudgmentsOpt = None,
    resume: Annotated[Optional[Path], typer.Option(help="continue a killed run from its last finished stage, with the settings it was started with (no other flags)")] = None,
    base_model: Annotated[Optional[str], typer.Option(help=f"model to fine-tune (default {_default('base_model')})")] = None,
    architecture: Annotated[Optional[str], typer.Option(help="splade or inference-free")] = None,
    rounds: Annotated[Optional[int], typer.Option(help=f"training rounds (default {_default('rounds')})")] = None,
    epochs: Annotated[Optional[float], typer.Option(help=f"epochs in round 0 (default {_default('epochs')})")] = None,
    mining_epochs: Annotated[Optional[float], typer.Option(help="epochs in each mining round (default: as in round 0)")] = None,
    train_batch_size: Annotated[Optional[int], typer.Option(help=f"rows per training batch (default {_default('train_batch_size')})")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help=f"learning rate (default {_default('learning_rate')})")] = None,
    negatives: Annotated[Optional[int], typer.Option(help=f"mined negatives per row (default {_default('negatives')})")] = None,
    mining_strategy: Annotated[Optional[str], typer.Option(help=f"top, mixed or random (default {_default('mining_strategy')})")] = None,
    positive_min_gain: Annotated[Optional[float], typer.Option(help="gain at which a judged product is a round-0 training positive")] = None,
    mined_positive_min_gain: Annotated[Optional[float], typer.Option(help="gain at which a judged product is a mining-round training positive")] = None,
    mine_judged_partials: Annotated[bool, typer.Option("--mine-judged-partials", help="let products judged for a query below a positive but above zero (e.g. ESCI Substitutes) be its mined negatives")] = False,
    export_model: Annotated[Optional[str], typer.Option(help=f"average (of every round's weights) or last (default {_default('export_model')})")] = None,
    train_precision: Annotated[Optional[str], typer.Option(help="auto, float32 or bfloat16 (autocast; weights stay float32). Default auto: bfloat16 for models of hidden size 256+ on CPUs with AMX/AVX512-BF16")] = None,
    test_judgments: Annotated[Optional[Path], typer.Option("--eval-judgments", "--test-judgments", help="held-out judgments file instead of a random split (every query in it is held out)")] = None,
    queries_per_product: Annotated[Optional[int], typer.Option(help=f"without --judgments: generated queries per product (default {_default('queries_per_product')})")] = None,
    query_products: Annotated[Optional[int], typer.Option(help="without --judgments: generate for a seeded sample of this many products")] = None,
    llm_url: Annotated[Optional[str], typer.Option(help="without --judgments: OpenAI-compatible endpoint for LLM queries (key: SPARSEFIT_LLM_API_KEY or OPENAI_API_KEY)")] = None,
    llm_model: Annotated[Optional[str], typer.Option(help="without --judgments: the chat model that writes queries (default: offline generator)")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {_default('seed')})")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="run folder (default runs/train-<time>)")] = None,
    search_posting_cap: SearchPostingCapOpt = None,
    qdrant_url: Annotated[Optional[str], typer.Option(help="Qdrant server URL; default: Qdrant Edge in the run folder")] = None,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Fine-tune a sparse encoder on the catalog: rounds of hard-negative mining through Qdrant and training."""
    from sparsefit.config import load_settings
    from sparsefit.pipeline import Trainer, resume_trainer

    started = time.perf_counter()
    if resume is not None:
        _refuse_flags_with_resume(ctx, resume, catalog)
        trainer = resume_trainer(resume)
        console.print(f"Resuming {resume}: finished stages {', '.join(trainer.state.stages) or 'none'}")
    else:
        if catalog is None:
            raise SparsefitError("train needs a catalog (or --resume RUN)", hint="sparsefit train CATALOG [--judgments FILE]")
        settings = load_settings(
            config, base_model=base_model, architecture=architecture, rounds=rounds, epochs=epochs, mining_epochs=mining_epochs,
            train_batch_size=train_batch_size, learning_rate=learning_rate, negatives=negatives,
            mining_strategy=mining_strategy, positive_min_gain=positive_min_gain,
            mined_positive_min_gain=mined_positive_min_gain, mine_judged_partials=mine_judged_partials or None,
            export_model=export_model, train_precision=train_precision,
            test_judgments=test_judgments,
            queries_per_product=queries_per_product, query_products=query_products, llm_url=llm_url, llm_model=llm_model,
            seed=seed, output=output, qdrant_url=qdrant_url, search_posting_cap=search_posting_cap,
            **data,
        )
        if judgments is None:
            how = f"{settings.llm_model} at {settings.llm_url or 'api.openai.com'}" if settings.llm_model else "the offline generator"
            console.print(f"No --judgments: training on queries generated from the catalog by {how}.")
        trainer = Trainer(catalog, judgments, settings)
    _print_inputs(trainer.inputs)
    try:
        trainer.fit()
    except KeyboardInterrupt:
        console.print(f"[yellow]Stopped. Finished stages are kept; continue with: sparsefit train --resume {trainer.folder}[/]")
        raise SystemExit(130) from None
    model = trainer.export()
    console.print(trainer.report().table(title="Held-out evaluation per round"), soft_wrap=True)
    _print_search_mode(trainer.settings)
    console.print(f"Wall time {time.perf_counter() - started:.0f} s; per stage: {trainer.timings}")
    exported = "the weight average of the rounds" if trainer.state.done("average/evaluate") else "the last round's model"
    console.print(f"Model: {model} ({exported}; a SparseEncoder folder). Search it: sparsefit search {trainer.folder} \"your query\"")


def _refuse_flags_with_resume(ctx: typer.Context, resume: Path, catalog: Path | None) -> None:
    """``train --resume RUN`` uses the run's own catalog, judgments and saved settings: refuse anything
    else given with it (it would be silently ignored). The flags are checked before RUN is read."""
    ignored = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in ("resume", "catalog") or source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue  # not given: its default
        ignored.append(next((opt for opt in param.opts if opt.startswith("--")), param.opts[0]))
    if catalog is not None and (resume / "run.json").is_file():
        from sparsefit.files import read_json

        recorded = read_json(resume / "run.json").get("catalog")
        if recorded is None or not _same_file(catalog, Path(recorded)):
            ignored.insert(0, f"CATALOG {catalog} (the run's catalog is {recorded})")
    if ignored:
        raise SparsefitError(
            "--resume continues a run with the catalog and settings it was started with; "
            f"these would be ignored: {', '.join(ignored)}",
            hint=f"drop them (sparsefit train --resume {resume}), or start a new run with --output",
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:  # one of them is missing: compare the paths
        return a.resolve() == b.resolve()


@app.command("generate-queries")
@with_data_options
def generate_queries(
    catalog: CatalogArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the queries (JSON lines)")],
    per_product: Annotated[Optional[int], typer.Option(help=f"queries per product (default {_default('queries_per_product')})")] = None,
    products: Annotated[Optional[int], typer.Option(help="only a seeded sample of this many products (default: all)")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {_default('seed')})")] = None,
    llm_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (key: SPARSEFIT_LLM_API_KEY or OPENAI_API_KEY)")] = None,
    llm_model: Annotated[Optional[str], typer.Option(help="chat model that writes the queries (default: offline generator)")] = None,
    prompt_file: Annotated[Optional[Path], typer.Option(help="prompt template with {products} and {per_product}")] = None,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Write training queries generated from the catalog, for review: edit the file and pass it back as --judgments."""
    from sparsefit.config import load_settings
    from sparsefit.pipeline import generate_training_queries

    settings = load_settings(config, queries_per_product=per_product, query_products=products, seed=seed, llm_url=llm_url,
                             llm_model=llm_model, llm_prompt_file=prompt_file, **data)
    info = generate_training_queries(catalog, settings, output)
    console.print(f"Wrote {info['generated']:,} queries ({info['source']}) for {info['products']:,} products to {output} "
                  f"in {info['seconds']:.1f} s.")
    if info.get("kinds"):
        console.print(f"Kinds: {info['kinds']}")
    if info.get("cached") is not None:
        console.print(f"LLM: {info['requests']} requests, {info['retries']} retries, {info['cached']} products from the cache.")
    failed = info.get("failed_products") or []
    if failed:
        console.print(f"[yellow]{len(failed)} products got no queries after retries ({info['errors']}); "
                      f"first: {', '.join(failed[:5])}. Run the command again to retry them (answers so far are cached).[/]")


@app.command()
def search(
    run: Annotated[Path, typer.Argument(help="a run folder from `sparsefit train`")],
    query: Annotated[str, typer.Argument(help="the search query")],
    limit: Annotated[int, typer.Option(help="results to show")] = 10,
    filter: Annotated[Optional[str], typer.Option("--filter", help='payload filter as JSON, e.g. \'{"brand": "Acme", "price": {"lt": 50}}\'')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON (the /search response) instead of a table")] = False,
) -> None:
    """Search a trained run's catalog index and print the top products with scores and payload.

    The same search as `sparsefit serve`: the run's index (Edge or server), its exclusion rules and,
    when fitted, the per-hit confidence.
    """
    import json

    from sparsefit.serving.service import SearchService

    try:
        parsed = json.loads(filter) if filter else None
    except json.JSONDecodeError as exc:
        raise SparsefitError(f"--filter is not valid JSON ({exc.msg})", hint='write e.g. --filter \'{"brand": "Acme"}\'') from None
    service = SearchService.open(run, calibrate=False)
    try:
        result = service.search(query, limit=limit, filter=parsed)
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    table = Table(title=f"{query!r}: top {len(result['hits'])}")
    for column in ("#", "product id", "score", "confidence", "payload"):
        table.add_column(column)
    for hit in result["hits"]:
        shown = ", ".join(f"{k}={v}" for k, v in hit["payload"].items())
        confidence = "" if hit["confidence"] is None else f"{hit['confidence']:.2f}"
        table.add_row(str(hit["rank"]), hit["product_id"], f"{hit['score']:.3f}", confidence, shown[:200])
    Console().print(table)
    if result["confidence_note"] and result["hits"]:
        Console().print(f"confidence: {result['confidence_note']}")
    for fired in result["rules_fired"]:
        Console().print(f"exclusion rule {fired['id']} (\"{fired['when']}\" excludes \"{fired['exclude']}\"): "
                        f"{fired['excluded_products']} products left out")


@app.command()
@with_data_options
def inspect(
    catalog: CatalogArg,
    judgments: JudgmentsOpt = None,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Show what sparsefit detects in a catalog (and judgments): columns, text, label scheme, counts."""
    from sparsefit.config import load_settings
    from sparsefit.data import load_catalog, load_judgments
    from sparsefit.pipeline import catalog_options, judgments_options

    settings = load_settings(config, **data)
    loaded = load_catalog(catalog, **catalog_options(settings))
    console.print(f"[bold]{catalog}[/]: {len(loaded):,} products; id column [cyan]{loaded.id_field}[/]; "
                  f"text from {', '.join(loaded.text_fields)} with template {loaded.template!r}")
    if loaded.skipped:
        console.print(f"  skipped rows: {loaded.skipped}")
    for i in range(min(3, len(loaded))):
        console.print(f"  {loaded.ids[i]}: {loaded.texts[i][:120]}")
    if judgments is not None:
        j = load_judgments(judgments, loaded, **judgments_options(settings))
        _print_judgments(j)


def _print_judgments(j) -> None:
    console.print(
        f"[bold]{j.source}[/]: {len(j.product_ids):,} judgments of {len(j.keys()):,} queries; columns query="
        f"[cyan]{j.query_field}[/], product=[cyan]{j.id_field}[/], label=[cyan]{j.label_field}[/]; scheme: {j.scheme.describe()}"
    )
    if j.unknown_products:
        console.print(f"  [yellow]{j.unknown_products:,} judgments name products not in the catalog and were left out[/], "
                      f"e.g. {'; '.join(j.unknown_examples[:3])}")
    if j.skipped:
        console.print(f"  handled rows: {j.skipped}")
    if j.conflict_examples:
        console.print(f"  judged twice with different labels: {'; '.join(j.conflict_examples[:3])}")


def _print_inputs(inputs) -> None:
    c = inputs.catalog
    console.print(f"[bold]{c.source}[/]: {len(c):,} products (id [cyan]{c.id_field}[/], text {', '.join(c.text_fields)})")
    if c.skipped:
        console.print(f"  skipped rows: {c.skipped}")
    _print_judgments(inputs.judgments)
    s = inputs.split
    console.print(f"Split ({s.method}, seed {s.seed}): {len(s.train):,} train queries, {len(s.test):,} test queries")
    if s.not_evaluable:
        console.print(f"  {s.not_evaluable:,} judged queries have no relevant product: not evaluable, so never held out")


@app.command()
def models() -> None:
    """List the offline base models (aliases) and whether each is installed."""
    from sparsefit.models import ALIASES

    table = Table(title="Offline base models")
    for column in ("alias", "package", "installed", "description"):
        table.add_column(column)
    for alias in ALIASES.values():
        try:
            alias.folder()
            installed = "yes"
        except SparsefitError as exc:
            installed = f"no: {exc.hint}"
        table.add_row(alias.alias, alias.requirement, installed, alias.description)
    console.print(table)


def _serve_settings(config: Optional[Path], **overrides):
    """Settings for serve/studio; a non-loopback address without a token is refused."""
    from sparsefit.config import load_settings

    settings = load_settings(config, **overrides)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.token is None:
        raise SparsefitError(f"binding {settings.host} exposes the service beyond this machine without a token",
                             hint="pass --token (or set SPARSEFIT_TOKEN), or keep the default --host 127.0.0.1")
    return settings


def _run_app(app, settings, what: str, path: str = "") -> None:
    import uvicorn

    console.print(f"{what} on http://{settings.host}:{settings.port}{path}"
                  + (" (token required)" if settings.token else "") + "; Ctrl-C stops it.")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=3)


TokenOpt = Annotated[Optional[str], typer.Option(help="bearer token required on every endpoint (or SPARSEFIT_TOKEN)")]


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="a finished run folder from `sparsefit train`")],
    host: Annotated[Optional[str], typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default 8000)")] = None,
    token: TokenOpt = None,
    config: Optional[Path] = None,
) -> None:
    """Serve search over a run: POST /search, GET /products/{id}, POST /explain, /rules, GET /health, /docs."""
    from sparsefit.config import secret
    from sparsefit.serving.app import create_app
    from sparsefit.serving.service import SearchService

    settings = _serve_settings(config, host=host, port=port, token=token)
    SearchService.open(run).close()  # fail here, with one line, on a run that cannot be served; fits confidence once
    app_ = create_app([run], token=secret(settings.token))
    _run_app(app_, settings, f"Serving {run}")


@app.command()
def studio(
    workspace: Annotated[Optional[Path], typer.Option(help="studio folder for runs, jobs and uploads (default ./sparsefit-studio)")] = None,
    allow_root: Annotated[Optional[list[Path]], typer.Option(help="folder the studio may read catalogs from (repeatable; default: the current folder)")] = None,
    run: Annotated[Optional[list[Path]], typer.Option(help="an existing run folder to show and search too (repeatable)")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default 8000)")] = None,
    token: TokenOpt = None,
    max_jobs: Annotated[Optional[int], typer.Option(help="training jobs run at once; the others wait queued (default 1)")] = None,
    max_upload_mb: Annotated[Optional[int], typer.Option(help="largest file the studio accepts as an upload, in MB (default 200)")] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="do not open a browser")] = False,
    config: Optional[Path] = None,
) -> None:
    """The web studio: start training runs, follow them live, compare runs, and search with explanations."""
    from sparsefit.config import secret
    from sparsefit.serving.app import create_app

    settings = _serve_settings(config, host=host, port=port, token=token, workspace=workspace, allow_roots=allow_root,
                               max_jobs=max_jobs, max_upload_mb=max_upload_mb)
    roots = settings.allow_roots or [Path.cwd()]
    for root in roots:
        if not root.is_dir():
            raise SparsefitError("allowed root is not a folder", file=root, hint="pass an existing folder to --allow-root")
    token_text = secret(settings.token)
    app_ = create_app(list(run or []), workspace=settings.workspace, allowed_roots=roots, token=token_text,
                      max_upload_mb=settings.max_upload_mb, max_jobs=settings.max_jobs)
    url = f"http://{settings.host}:{settings.port}/studio" + (f"?token={quote(token_text, safe='')}" if token_text else "")
    if not no_open:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    _run_app(app_, settings, f"Studio (workspace {settings.workspace})", "/studio")


rules_app = typer.Typer(help="Exclusion rules of a run's collection: when a query is near A, drop results near B.",
                        no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("add")
def rules_add(
    run: Annotated[Path, typer.Argument(help="a finished run folder")],
    when: Annotated[str, typer.Argument(help="anchor text A: the rule fires for queries near it")],
    exclude: Annotated[str, typer.Argument(help="anchor text B: results near it are removed")],
    when_threshold: Annotated[float, typer.Option(help="cosine similarity of query and A at which the rule fires")] = 0.3,
    exclude_ratio: Annotated[float, typer.Option(help="a product is near B at this share of B's best score")] = 0.5,
    exclude_limit: Annotated[int, typer.Option(help="at most this many products near B are removed")] = 200,
) -> None:
    """Add an exclusion rule to a run's collection."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        rule = service.add_rule(when, exclude, when_threshold=when_threshold, exclude_ratio=exclude_ratio,
                                exclude_limit=exclude_limit)
    finally:
        service.close()
    console.print(f"Added rule {rule.id}: when the query is near {rule.when!r}, remove results near {rule.exclude!r}.")


@rules_app.command("list")
def rules_list(run: Annotated[Path, typer.Argument(help="a finished run folder")]) -> None:
    """List a run's exclusion rules."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        table = Table(title=f"Exclusion rules of {run}")
        for column in ("id", "when (A)", "exclude (B)", "when ≥ cos", "exclude ≥ ratio", "limit"):
            table.add_column(column)
        for r in service.rules.list():
            table.add_row(r.id, r.when, r.exclude, str(r.when_threshold), str(r.exclude_ratio), str(r.exclude_limit))
        console.print(table)
    finally:
        service.close()


@rules_app.command("remove")
def rules_remove(run: Annotated[Path, typer.Argument(help="a finished run folder")],
                 rule_id: Annotated[str, typer.Argument(help="the rule's id (see `sparsefit rules list`)")]) -> None:
    """Remove an exclusion rule."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        rule = service.remove_rule(rule_id)
    except KeyError:
        raise SparsefitError(f"no rule with id {rule_id!r}", file=run, hint="see `sparsefit rules list RUN`") from None
    finally:
        service.close()
    console.print(f"Removed rule {rule.id} ({rule.when!r} → {rule.exclude!r}).")


@app.command()
def calibrate(run: Annotated[Path, typer.Argument(help="a finished run folder")]) -> None:
    """Fit the per-hit confidence on the run's held-out queries and print its calibration error."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        model = service.fit_confidence()
    finally:
        service.close()
    r = model.report
    console.print(f"Confidence fitted on {r['hits']:,} hits of {r['queries']:,} held-out queries "
                  f"(relevant rate {r['relevant_rate']}): ECE {r['ece_cross_fitted']} on queries it was not fitted on "
                  f"(two-fold), Brier {r['brier_cross_fitted']}. Saved to {run / 'confidence.json'}.")


def _usage_line(exc) -> str:
    """A usage error as one line: what is wrong, then the command's usage and where its help is."""
    ctx = exc.ctx
    if ctx is None:
        return f"{exc.format_message()}. Fix: see 'sparsefit --help'"
    usage = " ".join(ctx.get_usage().split())  # "Usage: sparsefit train [OPTIONS] [catalog]"
    return f"{exc.format_message().rstrip('.')}. Fix: see '{ctx.command_path} --help' ({usage[0].lower()}{usage[1:]})"


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turning user errors (ours and typer's usage errors) into one line and exit code 2.

    ``argv`` defaults to ``sys.argv[1:]``. It returns on success (exit code 0) and raises ``SystemExit`` otherwise.
    """
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    def error(text: str) -> None:
        console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)

    try:
        code = app(args=argv, prog_name="sparsefit", standalone_mode=False)
    except SparsefitError as exc:
        error(str(exc))
    except NoArgsIsHelpError as exc:  # `sparsefit` or `sparsefit rules` alone: typer printed the help
        if exc.format_message().strip():  # (without rich, the help is the message)
            typer.echo(exc.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except UsageError as exc:  # unknown command or option, a bad or missing value
        error(_usage_line(exc))
    except ClickException as exc:
        error(exc.format_message())
    except (KeyboardInterrupt, typer.Abort):
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except OSError as exc:  # the safety net for file system trouble not caught where it happened
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}. Fix: check the path, its permissions and free disk space.")
    # Without standalone mode typer returns what the command returned, or the code of a typer.Exit
    # (--help and --version: 0; Ctrl-C during a command: 130).
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
