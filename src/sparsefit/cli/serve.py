"""The web servers: ``sparsefit serve`` (the search API over one run) and ``sparsefit studio`` (the web
studio), both refusing a non-loopback address without a token."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import quote

import typer

from sparsefit.cli.options import DeviceOpt
from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


def _serve_settings(config: Optional[Path], **overrides):
    """Settings for serve/studio; a non-loopback address without a token is refused."""
    from sparsefit.config import load_settings

    settings = load_settings(config, **overrides)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and settings.token is None:
        raise SparsefitError(f"binding {settings.host} exposes the service beyond this machine without a token",
                             hint="pass --token (or set SPARSEFIT_TOKEN), or keep the default --host 127.0.0.1")
    return settings


def _run_app(app, settings, what: str, path: str = "") -> None:
    import uvicorn

    console.print(f"{what} on http://{settings.host}:{settings.port}{path}"
                  + (" (token required)" if settings.token else "") + "; Ctrl-C stops it.")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=3)


TokenOpt = Annotated[Optional[str], typer.Option(help="bearer token required on every endpoint (or SPARSEFIT_TOKEN)")]


@app.command()
def serve(
    run: Annotated[Path, typer.Argument(help="a finished run folder from `sparsefit train`")],
    host: Annotated[Optional[str], typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default 8000)")] = None,
    token: TokenOpt = None,
    device: DeviceOpt = None,
    config: Optional[Path] = None,
) -> None:
    """Serve search over a run: POST /search, GET /products/{id}, POST /explain, /rules, GET /health, /docs."""
    from sparsefit.config import secret
    from sparsefit.serving.app import create_app
    from sparsefit.serving.service import SearchService

    settings = _serve_settings(config, host=host, port=port, token=token)
    SearchService.open(run, device=device).close()  # fail here, with one line, on a run that cannot be served; fits confidence once
    app_ = create_app([run], token=secret(settings.token), device=device)
    _run_app(app_, settings, f"Serving {run}")


@app.command()
def studio(
    workspace: Annotated[Optional[Path], typer.Option(help="studio folder for runs, jobs and uploads (default ./sparsefit-studio)")] = None,
    allow_root: Annotated[Optional[list[Path]], typer.Option(help="folder the studio may read catalogs from (repeatable; default: the current folder)")] = None,
    run: Annotated[Optional[list[Path]], typer.Option(help="an existing run folder to show and search too (repeatable)")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (default 8000)")] = None,
    token: TokenOpt = None,
    max_jobs: Annotated[Optional[int], typer.Option(help="training jobs run at once; the others wait queued (default 1)")] = None,
    max_upload_mb: Annotated[Optional[int], typer.Option(help="largest file the studio accepts as an upload, in MB (default 200)")] = None,
    no_open: Annotated[bool, typer.Option("--no-open", help="do not open a browser")] = False,
    config: Optional[Path] = None,
) -> None:
    """The web studio: start training runs, follow them live, compare runs, and search with explanations."""
    from sparsefit.config import secret
    from sparsefit.serving.app import create_app

    settings = _serve_settings(config, host=host, port=port, token=token, workspace=workspace, allow_roots=allow_root,
                               max_jobs=max_jobs, max_upload_mb=max_upload_mb)
    roots = settings.allow_roots or [Path.cwd()]
    for root in roots:
        if not root.is_dir():
            raise SparsefitError("allowed root is not a folder", file=root, hint="pass an existing folder to --allow-root")
    token_text = secret(settings.token)
    app_ = create_app(list(run or []), workspace=settings.workspace, allowed_roots=roots, token=token_text,
                      max_upload_mb=settings.max_upload_mb, max_jobs=settings.max_jobs)
    url = f"http://{settings.host}:{settings.port}/studio" + (f"?token={quote(token_text, safe='')}" if token_text else "")
    if not no_open:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    _run_app(app_, settings, f"Studio (workspace {settings.workspace})", "/studio")
