"""``sparsefit publish``: push a finished run's model with its model card to a model hub, or write it as a .tar.gz."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


@app.command()
def publish(
    run: Annotated[Path, typer.Argument(help="a finished run folder from `sparsefit train`")],
    repo: Annotated[Optional[str], typer.Option("--repo", metavar="ORG/NAME", help="the hub repository to push to (a model repo, created if missing); the token comes from HF_TOKEN")] = None,
    private: Annotated[bool, typer.Option("--private", help="create the repository private (an existing public one is refused, not changed)")] = False,
    revision: Annotated[Optional[str], typer.Option("--revision", metavar="BRANCH", help="the branch to commit to, created from main if missing (default: main)")] = None,
    to: Annotated[Optional[Path], typer.Option("--to", metavar="FILE.tar.gz", help="write the same files as a .tar.gz archive (one folder named after the run)")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", metavar="URL", help="the hub's URL (default: HF_ENDPOINT, else https://huggingface.co)")] = None,
    license: Annotated[Optional[str], typer.Option("--license", metavar="ID", help="the license id in the card's metadata (default: the base model's for the built-in base models, else 'other')")] = None,
) -> None:
    """Publish a finished run's model: the files of its model/ with the run's model card as README.md
    (held-out table, base model, recipe, data summary; license in its metadata).

    --repo pushes them to a model hub in one commit (the token from HF_TOKEN, never printed).

    --to writes the same files as a .tar.gz, atomically. Give either or both.
    """
    import sparsefit.publish as publishing

    if repo is None and to is None:
        raise SparsefitError("publish needs --repo ORG/NAME, --to FILE.tar.gz or both",
                             hint=f"e.g. sparsefit publish {run} --repo acme/catalog-splade")
    if repo is None and (private or revision is not None or endpoint is not None):
        raise SparsefitError("--private, --revision and --endpoint apply to --repo, which is not given",
                             hint=f"add --repo ORG/NAME, e.g. sparsefit publish {run} --repo acme/catalog-splade --private")
    if repo is not None:
        publishing.check_hub_target(repo, revision=revision, endpoint=endpoint)  # before an archive is written beside it
    files = publishing.published_files(run, license=license)
    summary = f"{len(files)} files, {_size(publishing.total_size(files))}"
    if to is not None:
        archive = publishing.write_archive(run, to, license=license)
        console.print(f"Wrote {archive} ({summary}).", markup=False, highlight=False)
        typer.echo(str(archive))
    if repo is not None:
        commit_url = publishing.publish(run, repo, private=private, revision=revision, endpoint=endpoint, license=license)
        branch = f", branch {revision}" if revision not in (None, "main") else ""
        console.print(f"Published {repo} ({summary}{branch}{', private' if private else ''}): "
                      f"{commit_url.split('/commit/')[0]}", markup=False, highlight=False)
        typer.echo(commit_url)


def _size(n: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as the hub shows sizes)."""
    if n < 1000:
        return f"{n} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < scale * 1000 or unit == "GB":
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
