"""Console summaries that several commands print: the inputs read (catalog, judgments, split), judgments
alone, and a note when the numbers come from approximate (two-stage) search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsefit.progress import console

if TYPE_CHECKING:
    from sparsefit.config import Settings


def print_search_mode(settings: Settings) -> None:
    """Say when the numbers above come from approximate (two-stage) search."""
    if settings.search_posting_cap is not None:
        console.print(f"Searched two-stage (approximate): {settings.search_query_terms} query terms find "
                      f"{settings.search_candidates} candidates in posting lists capped at {settings.search_posting_cap:,} "
                      "products, rescored exactly. Leave out --search-posting-cap for exact search.")


def print_judgments(j) -> None:
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


def print_inputs(inputs) -> None:
    c = inputs.catalog
    console.print(f"[bold]{c.source}[/]: {len(c):,} products (id [cyan]{c.id_field}[/], text {', '.join(c.text_fields)})")
    if c.skipped:
        console.print(f"  skipped rows: {c.skipped}")
    print_judgments(inputs.judgments)
    s = inputs.split
    console.print(f"Split ({s.method}, seed {s.seed}): {len(s.train):,} train queries, {len(s.test):,} test queries")
    if s.not_evaluable:
        console.print(f"  {s.not_evaluable:,} judged queries have no relevant product: not evaluable, so never held out")
