"""``sparsefit rules``: the sub-app that adds, lists and removes the exclusion rules of a run's collection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console

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
