"""The root of the command line: the ``sparsefit`` typer app, its ``--version``, and :func:`main`, the entry
point that turns user errors (ours and typer's usage errors) into one ``error:`` line and exit code 2."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from sparsefit.errors import EXIT_USAGE, SparsefitError
from sparsefit.interrupt import catching_ctrl_c
from sparsefit.progress import console

app = typer.Typer(
    name="sparsefit",
    help="Fine-tune sparse neural retrievers (SPLADE) on your product catalog and serve them from Qdrant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("sparsefit")
        except PackageNotFoundError:  # running from a source tree that was never installed
            installed = "unknown (not installed)"
        typer.echo(f"sparsefit {installed}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


def _usage_line(exc) -> str:
    """A usage error as one line: what is wrong, then the command's usage and where its help is."""
    ctx = exc.ctx
    if ctx is None:
        return f"{exc.format_message()}. Fix: see 'sparsefit --help'"
    usage = " ".join(ctx.get_usage().split())  # "Usage: sparsefit train [OPTIONS] [catalog]"
    return f"{exc.format_message().rstrip('.')}. Fix: see '{ctx.command_path} --help' ({usage[0].lower()}{usage[1:]})"


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app, turning user errors (ours and typer's usage errors) into one line and exit code 2.

    ``argv`` defaults to ``sys.argv[1:]``. It returns on success (exit code 0) and raises ``SystemExit`` otherwise.
    """
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    def error(text: str) -> None:
        console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)

    try:
        with catching_ctrl_c():  # a Ctrl-C swallowed by a __del__ is raised again at the next step
            code = app(args=argv, prog_name="sparsefit", standalone_mode=False)
    except SparsefitError as exc:
        error(str(exc))
    except NoArgsIsHelpError as exc:  # `sparsefit` or `sparsefit rules` alone: typer printed the help
        if exc.format_message().strip():  # (without rich, the help is the message)
            typer.echo(exc.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except UsageError as exc:  # unknown command or option, a bad or missing value
        error(_usage_line(exc))
    except ClickException as exc:
        error(exc.format_message())
    except (KeyboardInterrupt, typer.Abort):
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except OSError as exc:  # the safety net for file system trouble not caught where it happened
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}. Fix: check the path, its permissions and free disk space.")
    # Without standalone mode typer returns what the command returned, or the code of a typer.Exit
    # (--help and --version: 0; Ctrl-C during a command: 130).
    if isinstance(code, int) and code != 0:
        sys.exit(code)
