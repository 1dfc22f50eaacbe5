"""``sparsefit train``: fine-tune a sparse encoder on a catalog, or continue a killed run with ``--resume``
(refusing flags that ``--resume`` would silently ignore)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.cli.options import (
    CollectionOpt,
    DeviceOpt,
    JudgmentsOpt,
    QdrantOnDiskOpt,
    QdrantReplicasOpt,
    QdrantShardsOpt,
    QdrantWriteConsistencyOpt,
    SearchPostingCapOpt,
    DenseOpt,
    qdrant_options,
    setting_default,
    with_data_options,
)
from sparsefit.cli.printing import print_inputs, print_search_mode
from sparsefit.cli.root import app
from sparsefit import distributed
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


@app.command()
@with_data_options
def train(
    ctx: typer.Context,
    catalog: Annotated[Optional[Path], typer.Argument(help="product catalog: CSV, TSV, JSON, JSONL or Parquet")] = None,
    judgments: JudgmentsOpt = None,
    domains: Annotated[Optional[Path], typer.Option(help="train one model on several catalogs: a YAML file listing each domain's catalog, judgments, data options and weight (no CATALOG then)")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="continue a killed run from its last finished stage, with the settings it was started with (no other flags)")] = None,
    model_type: Annotated[Optional[str], typer.Option(help="splade (default: fine-tuned in rounds) or minicoil (per-word sense layers trained on the catalog alone; judgments only evaluate it)")] = None,
    minicoil_encoder: Annotated[Optional[str], typer.Option(help=f"miniCOIL: token-embedding model (default {setting_default('minicoil_encoder')})")] = None,
    minicoil_sentence_model: Annotated[Optional[str], typer.Option(help=f"miniCOIL: sentence model that teaches the layers (default {setting_default('minicoil_sentence_model')})")] = None,
    minicoil_min_contexts: Annotated[Optional[int], typer.Option(help=f"miniCOIL: products a word needs for its own layer (default {setting_default('minicoil_min_contexts')})")] = None,
    minicoil_max_contexts: Annotated[Optional[int], typer.Option(help=f"miniCOIL: at most this many of a word's products train its layer (default {setting_default('minicoil_max_contexts')})")] = None,
    base_model: Annotated[Optional[str], typer.Option(help=f"model to fine-tune (default {setting_default('base_model')})")] = None,
    architecture: Annotated[Optional[str], typer.Option(help="splade or inference-free")] = None,
    rounds: Annotated[Optional[int], typer.Option(help=f"training rounds (default {setting_default('rounds')})")] = None,
    epochs: Annotated[Optional[float], typer.Option(help=f"epochs in round 0 (default {setting_default('epochs')})")] = None,
    mining_epochs: Annotated[Optional[float], typer.Option(help="epochs in each mining round (default: as in round 0)")] = None,
    train_batch_size: Annotated[Optional[int], typer.Option(help=f"rows per training batch (default {setting_default('train_batch_size')})")] = None,
    learning_rate: Annotated[Optional[float], typer.Option(help=f"learning rate (default {setting_default('learning_rate')})")] = None,
    negatives: Annotated[Optional[int], typer.Option(help=f"mined negatives per row (default {setting_default('negatives')})")] = None,
    mining_strategy: Annotated[Optional[str], typer.Option(help=f"top, mixed or random (default {setting_default('mining_strategy')})")] = None,
    positive_min_gain: Annotated[Optional[float], typer.Option(help="gain at which a judged product is a round-0 training positive")] = None,
    mined_positive_min_gain: Annotated[Optional[float], typer.Option(help="gain at which a judged product is a mining-round training positive")] = None,
    mine_judged_partials: Annotated[bool, typer.Option("--mine-judged-partials", help="let products judged for a query below a positive but above zero (e.g. ESCI Substitutes) be its mined negatives")] = False,
    export_model: Annotated[Optional[str], typer.Option(help=f"average (of every round's weights) or last (default {setting_default('export_model')})")] = None,
    train_precision: Annotated[Optional[str], typer.Option(help="auto, float32, bfloat16 or float16 (autocast; weights stay float32; float16 on CUDA only). Default auto: on CUDA bfloat16 where supported, else float16; on the CPU bfloat16 for models of hidden size 256+ on CPUs with AMX/AVX512-BF16")] = None,
    device: DeviceOpt = None,
    test_judgments: Annotated[Optional[Path], typer.Option("--eval-judgments", "--test-judgments", help="held-out judgments file instead of a random split (every query in it is held out)")] = None,
    queries_per_product: Annotated[Optional[int], typer.Option(help=f"without --judgments: generated queries per product (default {setting_default('queries_per_product')})")] = None,
    query_products: Annotated[Optional[int], typer.Option(help="without --judgments: generate for a seeded sample of this many products")] = None,
    train_products: Annotated[Optional[int], typer.Option(help="large catalogs: train on the queries of a seeded sample of this many products; mining and evaluation search the whole catalog")] = None,
    llm_url: Annotated[Optional[str], typer.Option(help="without --judgments: OpenAI-compatible endpoint for LLM queries (key: SPARSEFIT_LLM_API_KEY or OPENAI_API_KEY)")] = None,
    llm_model: Annotated[Optional[str], typer.Option(help="without --judgments: the chat model that writes queries (default: offline generator)")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {setting_default('seed')})")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="run folder (default runs/train-<time>)")] = None,
    search_posting_cap: SearchPostingCapOpt = None,
    dense: DenseOpt = None,
    qdrant_url: Annotated[Optional[str], typer.Option(help="Qdrant server URL; default: Qdrant Edge in the run folder")] = None,
    collection: CollectionOpt = None,
    qdrant_shards: QdrantShardsOpt = None,
    qdrant_replicas: QdrantReplicasOpt = None,
    qdrant_write_consistency: QdrantWriteConsistencyOpt = None,
    qdrant_on_disk: QdrantOnDiskOpt = False,
    config: Optional[Path] = None,
    data: Optional[dict] = None,
) -> None:
    """Fine-tune a sparse encoder on the catalog: rounds of hard-negative mining through Qdrant and training.

    Under ``torchrun --nproc-per-node N -m sparsefit train ...`` rank 0 leads and every rank trains (see
    :mod:`sparsefit.distributed`); --train-batch-size is then the global batch, split over the processes.
    """
    from sparsefit.config import load_settings
    from sparsefit.pipeline import resume_trainer, trainer_class

    started = time.perf_counter()
    settings = None
    if resume is not None:
        _refuse_flags_with_resume(ctx, resume, catalog)
    else:
        if domains is not None and (catalog is not None or judgments is not None):
            raise SparsefitError("--domains names every catalog and its judgments; a CATALOG or --judgments beside it would be ignored",
                                 hint="put them in the domains file (sparsefit train --domains domains.yaml)")
        if domains is not None and distributed.world_size() > 1:
            raise SparsefitError("multi-domain training runs in one process (not under torchrun yet)",
                                 hint="run `sparsefit train --domains ...` without torchrun")
        if catalog is None and domains is None:
            raise SparsefitError("train needs a catalog (or --domains FILE, or --resume RUN)",
                                 hint="sparsefit train CATALOG [--judgments FILE]")
        settings = load_settings(
            config, model_type=model_type, minicoil_encoder=minicoil_encoder, minicoil_sentence_model=minicoil_sentence_model,
            minicoil_min_contexts=minicoil_min_contexts, minicoil_max_contexts=minicoil_max_contexts, base_model=base_model, architecture=architecture, rounds=rounds, epochs=epochs, mining_epochs=mining_epochs,
            train_batch_size=train_batch_size, learning_rate=learning_rate, negatives=negatives,
            mining_strategy=mining_strategy, positive_min_gain=positive_min_gain,
            mined_positive_min_gain=mined_positive_min_gain, mine_judged_partials=mine_judged_partials or None,
            export_model=export_model, train_precision=train_precision, device=device,
            test_judgments=test_judgments,
            queries_per_product=queries_per_product, query_products=query_products, train_products=train_products, llm_url=llm_url, llm_model=llm_model,
            seed=seed, output=output, qdrant_url=qdrant_url, search_posting_cap=search_posting_cap, dense=dense,
            **qdrant_options(collection, qdrant_shards, qdrant_replicas, qdrant_write_consistency, qdrant_on_disk),
            **data,
        )

    from sparsefit.pipeline import MultiDomainTrainer, is_multi_domain, resume_multi_domain

    if domains is not None and settings.model_type != "splade":
        raise SparsefitError("multi-domain training trains SPLADE models", hint="train a miniCOIL per catalog, or drop --model-type")
    if domains is not None or (resume is not None and is_multi_domain(resume)):
        trainer = (resume_multi_domain(resume, device=device) if resume is not None
                   else MultiDomainTrainer(domains, settings))
        _run_domains(trainer, started)
        return

    def make_trainer():
        if resume is not None:
            trainer = resume_trainer(resume, device=device)
            console.print(f"Resuming {resume}: finished stages {', '.join(trainer.state.stages) or 'none'}")
            return trainer
        if judgments is None:
            how = f"{settings.llm_model} at {settings.llm_url or 'api.openai.com'}" if settings.llm_model else "the offline generator"
            console.print(f"No --judgments: training on queries generated from the catalog by {how}.")
        return trainer_class(settings)(catalog, judgments, settings)

    if distributed.world_size() == 1:
        _run(make_trainer, started)
        return
    from sparsefit.devices import resolve_device

    distributed.start(resolve_device(device or (settings.device if settings is not None else "auto")))
    try:
        if not distributed.is_leader():
            distributed.follow()  # trains each round beside the leader; writes nothing
            return
        try:
            _run(make_trainer, started)
        except Exception as exc:  # tell the followers, so they stop now rather than at their timeout
            if distributed.is_collective_failure(exc):
                raise distributed.peer_lost(exc) from None
            try:
                distributed.send(distributed.Message("failed", reason=str(exc) or type(exc).__name__))
            except SparsefitError:
                pass  # they are gone already; our own error is the one to show
            raise
    finally:
        distributed.stop()


def _run(make_trainer, started: float) -> None:
    """The run itself, on the one process or on torchrun's leader."""
    trainer = make_trainer()
    distributed.send(distributed.Message("start", options=trainer.settings))  # the followers' settings
    print_inputs(trainer.inputs)
    _fit_or_stop(trainer)
    model = trainer.export()
    distributed.send(distributed.Message("done"))
    console.print(trainer.report().table(title="Held-out evaluation per round"), soft_wrap=True)
    from sparsefit.pipeline.retrieval import feedback_summary, fusion_summary

    for line in (fusion_summary(trainer.run), feedback_summary(trainer.run)):
        if line is not None:
            console.print(line)
    print_search_mode(trainer.settings)
    console.print(f"Wall time {time.perf_counter() - started:.0f} s; per stage: {trainer.timings}")
    exported = ("miniCOIL, trained on the catalog" if trainer.settings.model_type == "minicoil"
                else "the weight average of the rounds" if trainer.state.done("average/evaluate") else "the last round's model")
    kind = "a miniCOIL folder" if trainer.settings.model_type == "minicoil" else "a SparseEncoder folder"
    console.print(f"Model: {model} ({exported}; {kind}). Search it: sparsefit search {trainer.folder} \"your query\"")


def _fit_or_stop(trainer) -> None:
    """Every stage; Ctrl-C (or the studio's Cancel) stops with 130 and says how to resume."""
    try:
        trainer.fit()
    except KeyboardInterrupt:
        console.print(f"[yellow]Stopped. Finished stages are kept; continue with: sparsefit train --resume {trainer.folder}[/]")
        raise SystemExit(130) from None


def _run_domains(trainer, started: float) -> None:
    """A multi-domain run: per-domain inputs, the rounds, then each domain's table and the macro average."""
    for domain in trainer.domains:
        console.print(f"[bold]Domain {domain.domain.name}[/]")
        print_inputs(domain.inputs)
    _fit_or_stop(trainer)
    model = trainer.export()
    reports = trainer.reports()
    for name, report in reports.items():
        console.print(report.table(title=f"{name}: held-out evaluation per round ({len(report.queries):,} test queries, "
                                          f"{report.catalog_size:,} products)"), soft_wrap=True)
    console.print(trainer.macro_table(reports), soft_wrap=True)
    console.print(f"Wall time {time.perf_counter() - started:.0f} s; per stage: {trainer.timings}")
    console.print(f"Model: {model} (one model for {len(reports)} catalogs). Search a domain: "
                  f"sparsefit search {trainer.folder / 'domains' / next(iter(reports))} \"your query\"")


def _refuse_flags_with_resume(ctx: typer.Context, resume: Path, catalog: Path | None) -> None:
    """``train --resume RUN`` uses the run's own catalog, judgments and saved settings: refuse anything
    else given with it (it would be silently ignored). The flags are checked before RUN is read."""
    ignored = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in ("resume", "catalog", "device") or source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
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
