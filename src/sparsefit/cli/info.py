"""What sparsefit sees before training: ``sparsefit inspect`` (what it detects in a catalog and judgments)
and ``sparsefit models`` (the offline base models and whether each is installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.table import Table

from sparsefit.cli.options import CatalogArg, JudgmentsOpt, with_data_options
from sparsefit.cli.printing import print_judgments
from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


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
        print_judgments(j)


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
