"""``sparsefit export``: a run's model as a sentence-transformers folder or as ONNX, checked after writing."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from sparsefit.cli.root import app
from sparsefit.errors import SparsefitError
from sparsefit.progress import console


class ExportFormat(str, Enum):
    sentence_transformers = "sentence-transformers"
    onnx = "onnx"


CHECK_TEXTS = 64  # catalog texts the exported ONNX model is checked on


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="a finished run folder from `sparsefit train`")],
    format: Annotated[ExportFormat, typer.Option("--format", help="sentence-transformers (the model folder) or onnx (masked-LM logits, pooled by the consumer: max over tokens of log(1 + relu) × attention mask)")] = ExportFormat.sentence_transformers,
    output: Annotated[Optional[Path], typer.Option(help="the folder to write (default: RUN/export/FORMAT)")] = None,
) -> None:
    """Write the run's model for serving elsewhere. ONNX is checked against the PyTorch vectors on the run's
    own catalog texts before the command says it is done."""
    from sparsefit.run import RunFolder, exported

    folder = RunFolder(run)
    if not folder.model.is_dir() or not exported(run):
        raise SparsefitError("the run has no exported model", file=run,
                             hint=f"finish it first: `sparsefit train --resume {run}`")
    target = output or run / "export" / format.value
    _check_target(target, folder, format)
    if format is ExportFormat.sentence_transformers:
        from sparsefit.models.onnx_export import export_sentence_transformers

        export_sentence_transformers(folder.model, target)
        console.print(f"Wrote {target} (a sentence-transformers SparseEncoder folder: SparseEncoder(\"{target}\")).",
                      markup=False, highlight=False, soft_wrap=True)
        return
    _export_onnx(folder, target)


def _check_target(target: Path, folder, format: ExportFormat) -> None:
    """Refuse a target that would replace something other than an earlier export of this kind (the run, a
    folder above it, its model, a folder of other files)."""
    resolved, run = target.resolve(), folder.path.resolve()
    if resolved == run or resolved in run.parents or resolved == folder.model.resolve() or folder.model.resolve() in resolved.parents:
        raise SparsefitError("the export would replace the run, a folder above it or its model/", file=target,
                             hint="pass --output a new folder, e.g. RUN/export/onnx")
    marker = "sparsefit_onnx.json" if format is ExportFormat.onnx else "modules.json"
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / marker).is_file())):
        raise SparsefitError("the output exists and is not an earlier export of this format", file=target,
                             hint="pass --output a new or empty folder (an earlier export is replaced)")


def _export_onnx(folder, target: Path) -> None:
    import numpy as np

    from sparsefit.models import load_encoder
    from sparsefit.models.onnx_export import export_onnx, onnx_vectors, require_onnx

    require_onnx()
    encoder = load_encoder(str(folder.model))
    texts = _check_texts(folder)
    want = encoder.encode_documents(texts).toarray()
    delta = 0.0

    def check(written: Path) -> None:  # before the export takes the target's place
        nonlocal delta
        got = onnx_vectors(written, texts).toarray()
        delta = float(np.abs(want - got).max()) if len(texts) else 0.0
        if delta > 1e-4:
            raise SparsefitError(f"the ONNX model's vectors differ from the PyTorch ones by up to {delta:.2g}",
                                 file=target, hint="nothing was written; use --format sentence-transformers meanwhile")

    export_onnx(encoder, target, check=check)
    size = (target / "model.onnx").stat().st_size / 1e6
    console.print(f"Wrote {target}/model.onnx ({size:.1f} MB; inputs {', '.join(_inputs(target))}; output: logits, pooled "
                  f"as max over tokens of log(1 + relu) · attention mask). Checked on {len(texts)} of the run's texts: "
                  f"max |Δ| {delta:.1e} against the PyTorch vectors.", markup=False, highlight=False, soft_wrap=True)


def _check_texts(folder) -> list[str]:
    """The first texts of the run's catalog (three fixed texts when the catalog file is gone)."""
    from sparsefit.config import load_settings
    from sparsefit.data import load_catalog
    from sparsefit.data.benchmark_formats import catalog_file
    from sparsefit.pipeline import catalog_options

    path = catalog_file(Path(folder.read_sources()["catalog"]))
    if not path.is_file():
        return ["cordless drill", "interior paint, eggshell, 1 gallon", "3/4 in. copper pipe fitting"]
    catalog = load_catalog(path, **catalog_options(load_settings(folder.config, output=folder.path)))
    return list(catalog.texts[:CHECK_TEXTS])


def _inputs(target: Path) -> list[str]:
    import json

    return json.loads((target / "sparsefit_onnx.json").read_text())["inputs"]
