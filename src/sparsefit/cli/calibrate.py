"""``sparsefit calibrate``: fit a run's per-hit confidence on its held-out queries and report its calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sparsefit.cli.root import app
from sparsefit.progress import console


@app.command()
def calibrate(run: Annotated[Path, typer.Argument(help="a finished run folder")]) -> None:
    """Fit the per-hit confidence on the run's held-out queries and print its calibration error."""
    from sparsefit.serving.service import SearchService

    service = SearchService.open(run, calibrate=False)
    try:
        model = service.fit_confidence()
    finally:
        service.close()
    r = model.report
    console.print(f"Confidence fitted on {r['hits']:,} hits of {r['queries']:,} held-out queries "
                  f"(relevant rate {r['relevant_rate']}): ECE {r['ece_cross_fitted']} on queries it was not fitted on "
                  f"(two-fold), Brier {r['brier_cross_fitted']}. Saved to {run / 'confidence.json'}.")
