"""``sparsefit explain``: why a product scores what it scores for a query, under the tuned and the base model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="a run folder from `sparsefit train`")],
    query: Annotated[str, typer.Argument(help="the search query")],
    product_id: Annotated[str, typer.Argument(help="a product id of the run's catalog")],
    top: Annotated[int, typer.Option(min=1, max=200, help="terms listed per table")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print the /explain response as JSON instead of tables")] = False,
) -> None:
    """The query's and the product's term weights, the expansions (terms not in the text), and the shared
    terms with their share of the score: the tuned model beside the base model it was trained from."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        try:
            result = service.explain(query, product_id, top_k=top)
        except KeyError:
            raise SparsefitError(f"no product with id {product_id!r} in the run's catalog", file=run,
                                 hint=f"take an id from `sparsefit search {run} \"{query}\"`") from None
    finally:
        service.close()
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    console = Console()
    console.print(f"{result['product_id']}: {result['product_text'][:300]}", markup=False, highlight=False)
    for name, model in result["models"].items():
        if model.get("model_type") == "minicoil":
            console.print(_minicoil_table(model))
            continue
        console.print(_shared_table(name, model))
        console.print(_expansions(name, model), markup=False, highlight=False)


def _shared_table(name: str, model: dict[str, Any]) -> Table:
    table = Table(title=f"{name} model: score {model['score']:.3f}, shared terms")
    for column in ("term", "query weight", "product weight", "contribution", "share"):
        table.add_column(column, justify="left" if column == "term" else "right")
    for term in model["shared_terms"]:
        table.add_row(term["term"], f"{term['query_weight']:.3f}", f"{term['product_weight']:.3f}",
                      f"{term['contribution']:.3f}", f"{term['share']:.0%}")
    if not model["shared_terms"]:
        table.add_row("(none: the product scores 0)", "", "", "", "")
    return table


def _minicoil_table(model: dict[str, Any]) -> Table:
    """miniCOIL: each shared word's BM25 parts (tf, idf) and how closely the two texts use it (sense similarity)."""
    table = Table(title=f"miniCOIL: score {model['score']:.3f} = Σ idf · tf · sense similarity over the shared words")
    for column in ("word", "own layer", "tf (BM25)", "idf", "sense similarity", "score"):
        table.add_column(column, justify="left" if column == "word" else "right")
    for w in model["shared_words"]:
        table.add_row(w["word"], "yes" if w["has_layer"] else "no (exact, as BM25)", f"{w['tf']:.3f}",
                      "" if w["idf"] is None else f"{w['idf']:.3f}", f"{w['similarity']:.3f}", f"{w['score']:.3f}")
    if not model["shared_words"]:
        table.add_row("(none: the product scores 0)", "", "", "", "", "")
    return table


def _expansions(name: str, model: dict[str, Any]) -> str:
    """Terms the model added that are not in the text, query and product side."""
    def listed(side: dict[str, Any]) -> str:
        return ", ".join(f"{t['term']} {t['weight']:.2f}" for t in side["expansion"]) or "none"

    return (f"{name} expansions: query ({model['query']['nnz']} terms) {listed(model['query'])}; "
            f"product ({model['product']['nnz']} terms) {listed(model['product'])}")
