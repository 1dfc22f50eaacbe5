"""``sparsefit search``: search a trained run from the command line, as a table or as the /search JSON."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError


class Retrieval(str, Enum):
    sparse = "sparse"
    bm25 = "bm25"
    dense = "dense"
    hybrid = "hybrid"
    hybrid_dense = "hybrid-dense"


@app.command()
def search(
    run: Annotated[Path, typer.Argument(help="a run folder from `sparsefit train`")],
    query: Annotated[str, typer.Argument(help="the search query")],
    limit: Annotated[int, typer.Option(help="results to show")] = 10,
    filter: Annotated[Optional[str], typer.Option("--filter", help='payload filter as JSON, e.g. \'{"brand": "Acme", "price": {"lt": 50}}\'')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON (the /search response) instead of a table")] = False,
    retrieval: Annotated[Retrieval, typer.Option(help="the tuned model (sparse), Qdrant's BM25, or both fused in one Qdrant query (hybrid, the run's fitted weights); a run trained with --dense: dense, and hybrid-dense (all three)")] = Retrieval.sparse,
    clicked: Annotated[Optional[list[str]], typer.Option("--clicked", help="a product id the shopper clicked (feedback score 1); repeatable")] = None,
    skipped: Annotated[Optional[list[str]], typer.Option("--skipped", help="a product id the shopper skipped (feedback score 0); repeatable")] = None,
    boost: Annotated[Optional[str], typer.Option("--boost", help='business boost as JSON: score · (1 + Σ weight · field), e.g. \'{"in_stock": 0.5}\'')] = None,
) -> None:
    """Search a trained run's catalog index and print the top products with scores and payload.

    The same search as `sparsefit serve`: the run's index (Edge or server), its exclusion rules and,
    when fitted, the per-hit confidence. --clicked/--skipped re-query with relevance feedback on earlier hits.
    """
    import json

    from sparsefit.serving.service import SearchService

    try:
        parsed = json.loads(filter) if filter else None
    except json.JSONDecodeError as exc:
        raise SparsefitError(f"--filter is not valid JSON ({exc.msg})", hint='write e.g. --filter \'{"brand": "Acme"}\'') from None
    try:
        boosts = json.loads(boost) if boost else None
    except json.JSONDecodeError as exc:
        raise SparsefitError(f"--boost is not valid JSON ({exc.msg})", hint='write e.g. --boost \'{"in_stock": 0.5}\'') from None
    feedback = [(pid, 1.0) for pid in clicked or ()] + [(pid, 0.0) for pid in skipped or ()]
    service = SearchService.open(run, calibrate=False)
    try:
        result = service.search(query, limit=limit, filter=parsed, retrieval=retrieval.value, feedback=feedback,
                                boost=boosts)
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
