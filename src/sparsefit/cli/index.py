"""``sparsefit index``: index a catalog of any size for production, a chunk at a time, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sparsefit.cli.options import (
    CatalogArg,
    ConfigOpt,
    DeviceOpt,
    EncodingOpt,
    IdFieldOpt,
    OnInvalidOpt,
    TemplateOpt,
    TextFieldsOpt,
    setting_default,
)
from sparsefit.cli.root import app
from sparsefit.defaults import INDEX_CHUNK_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


@app.command("index")
def index_catalog(
    catalog: CatalogArg,
    model: Annotated[str, typer.Option("--model", "-m", help="a finished run folder (its exported model/), an offline alias such as splade-tiny, or a model folder")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Qdrant Edge folder for the index (RUN/index is the one `sparsefit serve RUN` searches)")] = None,
    qdrant_url: Annotated[str | None, typer.Option(help="Qdrant server or cluster URL, instead of --output (API key from SPARSEFIT_QDRANT_API_KEY)")] = None,
    collection: Annotated[str | None, typer.Option(help=f"collection on the Qdrant server (default {setting_default('collection')})")] = None,
    batch_size: Annotated[int | None, typer.Option(help=f"texts per encoding batch (default {setting_default('batch_size')})")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="catalog rows read, encoded and upserted at a time; memory holds one chunk")] = INDEX_CHUNK_SIZE,
    device: DeviceOpt = None,
    id_field: IdFieldOpt = None,
    text_fields: TextFieldsOpt = None,
    template: TemplateOpt = None,
    on_invalid: OnInvalidOpt = None,
    encoding: EncodingOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Index a catalog for production into a Qdrant Edge folder or a server collection, streaming it.

    The file (CSV, TSV, JSON Lines or Parquet) is read, encoded and upserted a chunk at a time, so memory
    does not grow with the catalog. Interrupted, the same command goes on after the last finished chunk;
    with another model or catalog it starts over. With --model RUN the run's settings (text columns,
    template, sequence length) are the defaults.
    """
    from dataclasses import replace

    from sparsefit.bulk import model_source, stream_index
    from sparsefit.config import load_settings
    from sparsefit.devices import resolve_device
    from sparsefit.index import IndexLocation
    from sparsefit.models import load_encoder
    from sparsefit.pipeline import index_location
    from sparsefit.run import RunFolder

    if (output is None) == (qdrant_url is None):
        raise SparsefitError("say where the index goes: --output DIR (Qdrant Edge) or --qdrant-url URL, not "
                             + ("both" if output is not None else "neither"),
                             hint="e.g. --output RUN/index (which `sparsefit serve RUN` searches), or --qdrant-url "
                                  "http://qdrant:6333 --collection NAME")
    name, run = model_source(model)
    run_config = RunFolder(run).config if run is not None else None
    settings = load_settings(
        config if config is not None else (run_config if run_config is not None and run_config.is_file() else None),
        id_field=id_field, text_fields=text_fields, template=template, on_invalid=on_invalid, encoding=encoding,
        batch_size=batch_size, qdrant_url=qdrant_url, collection=collection, device=device,
    )
    if output is not None:
        location = IndexLocation(path=output)
    else:  # the server location as the settings describe it (API key, cluster settings), for exact search
        location = replace(index_location(settings, Path(".")), two_stage=None)
    encoder = load_encoder(name, architecture=settings.architecture, max_seq_length=settings.max_seq_length,
                           device=resolve_device(device or settings.device))
    console.print(f"Indexing {catalog} with {run or name} into {location.describe()}, {chunk_size:,} rows at a time.",
                  markup=False, highlight=False, soft_wrap=True)
    try:
        report = stream_index(
            encoder, catalog, location, id_field=settings.id_field, text_fields=settings.text_fields,
            template=settings.template, on_invalid=settings.on_invalid, encoding=settings.encoding,
            chunk_size=chunk_size, batch_size=settings.batch_size,
            notify=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
        )
    except KeyboardInterrupt:
        console.print("[yellow]Stopped. The chunks indexed so far are kept: run the same command again to go on.[/]")
        raise SystemExit(130) from None
    if report.up_to_date:
        console.print(f"{report.location} already holds the {report.products:,} products of this catalog, indexed with "
                      "this model: nothing to do.", markup=False, highlight=False, soft_wrap=True)
        return
    s = report.seconds
    resumed = f" ({report.resumed_products:,} of them before this run)" if report.resumed_products else ""
    console.print(
        f"Indexed {report.products:,} products{resumed} in {s['total']:.0f} s, {report.products_per_second:,.0f} "
        f"products/s (reading {s['read']:.0f} s, encoding {s['encode']:.0f} s, upserting {s['index']:.0f} s).",
        markup=False, highlight=False, soft_wrap=True)
    if report.skipped:
        console.print(f"  skipped rows: {report.skipped}", markup=False, highlight=False, soft_wrap=True)
    for note in report.type_notes:
        console.print(f"  {note}", style="yellow", markup=False, highlight=False, soft_wrap=True)
    if run is not None and output is not None and output.resolve() == RunFolder(run).index.resolve():
        console.print(f"Serve it: sparsefit serve {run}", markup=False, highlight=False, soft_wrap=True)
