"""``sparsefit generate-queries``: training queries generated from a catalog (offline or by an LLM), written
to a file for review before they are passed back as ``--judgments``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.cli.options import CatalogArg, setting_default, with_data_options
from sparsefit.cli.root import app
from sparsefit.progress import console


@app.command("generate-queries")
@with_data_options
def generate_queries(
    catalog: CatalogArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the queries (JSON lines)")],
    per_product: Annotated[Optional[int], typer.Option(help=f"queries per product (default {setting_default('queries_per_product')})")] = None,
    products: Annotated[Optional[int], typer.Option(help="only a seeded sample of this many products (default: all)")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"random seed (default {setting_default('seed')})")] = None,
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
