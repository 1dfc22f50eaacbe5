"""Options shared by several commands: the catalog/judgment reading options (added to a command by
:func:`with_data_options`), ``--search-posting-cap``, and :func:`setting_default` for help texts."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.errors import SparsefitError

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


def setting_default(name: str) -> object:
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


def _pin_device(value: str | None) -> str | None:
    """Checked and pinned while the command line is parsed, before anything starts CUDA."""
    from sparsefit.devices import pin_cuda_device, resolve_device

    if value is None:
        return None
    pinned = pin_cuda_device(value)
    resolve_device(pinned, asked=value)  # a missing GPU or a typo: one line, exit 2, before any work
    return pinned


DeviceOpt = Annotated[Optional[str], typer.Option(
    callback=_pin_device,
    help="auto (a CUDA GPU when present, else the CPU), cpu, cuda, cuda:N or mps (default auto)")]


DenseOpt = Annotated[Optional[str], typer.Option(
    "--dense", help="also index a dense model (minilm-l6 offline, a sentence-transformers folder or hub id) and report it "
                    "alone and fused three ways with the model and BM25 (opt-in: it encodes the catalog once more)")]
SearchPostingCapOpt = Annotated[Optional[int], typer.Option(
    help="two-stage search for large catalogs: a candidate index keeps each term's N heaviest products and the candidates "
         "are rescored exactly (e.g. 20000; default: exact search)")]


# -- where a Qdrant server or cluster keeps the index (train, evaluate) -------------------------
CollectionOpt = Annotated[Optional[str], typer.Option(
    help="collection on the Qdrant server (default catalog; evaluate adds -<model> per model)")]
QdrantShardsOpt = Annotated[Optional[int], typer.Option(
    min=1, help="with --qdrant-url: shards of a new collection, spread over the cluster's nodes (default: the server's, one per node)")]
QdrantReplicasOpt = Annotated[Optional[int], typer.Option(
    min=1, help="with --qdrant-url: copies of each shard on different nodes, so the collection survives a node (default: the server's, 1)")]
QdrantWriteConsistencyOpt = Annotated[Optional[int], typer.Option(
    min=1, help="with --qdrant-url: replicas that confirm each write before it counts as done, at most --qdrant-replicas (default: the server's, 1)")]
QdrantOnDiskOpt = Annotated[bool, typer.Option(
    "--qdrant-on-disk", help="keep a new index's sparse index and payloads on disk (memory-mapped) instead of in memory")]


def qdrant_options(collection: str | None, shards: int | None, replicas: int | None, write_consistency: int | None,
                   on_disk: bool) -> dict[str, object]:
    """The Qdrant flags as settings overrides (None: not given)."""
    return {"collection": collection, "qdrant_shards": shards, "qdrant_replicas": replicas,
            "qdrant_write_consistency": write_consistency, "qdrant_on_disk": on_disk or None}
