"""``sparsefit train --model-type minicoil``: a run whose model is miniCOIL, trained on the catalog alone.

The run folder is the same as a SPLADE run's (baselines, held-out split, index, report, card, model/),
so ``search``, ``serve``, ``explain``, ``export``-free tools and the studio read it unchanged. The
judged (or generated) queries are used for the held-out evaluation and the hybrid fit only: the
per-word layers learn from the catalog's texts (see :mod:`sparsefit.minicoil`). The stages are
``baselines``, ``round-0/train`` (the layers; token embeddings cached in ``cache/``),
``round-0/evaluate``, ``hybrid`` and ``export``, each resumable like a SPLADE run's.

Example:
    >>> from sparsefit.config import load_settings
    >>> trainer = MiniCoilTrainer("examples/catalog.csv", "examples/judged_queries.csv",
    ...                           load_settings(model_type="minicoil", output="runs/mc"))   # doctest: +SKIP
    >>> trainer.fit(); trainer.export()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

from sparsefit.files import write_json
from sparsefit.pipeline.records import DamagedCheckpoint
from sparsefit.pipeline.trainer import Trainer
from sparsefit.progress import console
from sparsefit.run import RunFolder

MODEL_NAME = "minicoil"


class MiniCoilTrainer(Trainer):
    """Baselines, then the miniCOIL layers (one training pass, no rounds), its held-out metrics and hybrid."""

    def fit(self) -> Path:
        self.baselines()
        if self.state.done(RunFolder.train_stage(0)):
            try:  # a resumed run checks that its model still loads; a damaged one is trained again (the cache makes it quick)
                self._encoder_after(0)
            except DamagedCheckpoint as damaged:
                self.state.forget([s for s in self.state.stages if s.startswith("round-0/") or s in (RunFolder.HYBRID, RunFolder.EXPORT)])
                self._loaded = None
                console.print(f"[yellow]The miniCOIL model is damaged ({damaged.reason}); training it again.[/]")
        if not self.state.done(RunFolder.evaluate_stage(0)):
            if not self.state.done(RunFolder.train_stage(0)):
                self._train_layers()
            self._index_and_evaluate(self._encoder_after(0), self.run.round(0), MODEL_NAME)
            self.state.mark(RunFolder.evaluate_stage(0))
        self._hybrid_stage()
        return self.folder

    def _train_layers(self) -> None:
        from sparsefit.minicoil import train_minicoil

        s = self.settings
        started = time.perf_counter()
        texts = self.inputs.catalog.texts
        reported: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:  # a line per tenth: the layers take minutes
            step = max(1, total // 10)
            if self.show_progress and (done == total or done // step > reported.get(stage, -1)):
                reported[stage] = done // step
                console.print(f"miniCOIL {'embedding products' if stage == 'embed' else 'fitting word layers'}: "
                              f"{done:,}/{total:,}")

        model = train_minicoil(texts, encoder=s.minicoil_encoder, sentence_model=s.minicoil_sentence_model,
                               min_contexts=s.minicoil_min_contexts, max_contexts=s.minicoil_max_contexts, seed=s.seed,
                               cache_dir=self.folder / "cache", progress=progress, device=self.device, name=MODEL_NAME)
        model.save(RunFolder.stage_model(self.run.round(0)))
        seconds = round(time.perf_counter() - started, 2)
        write_json(self.run.training(0), {
            "model_type": "minicoil", "products": len(texts), "encoder": s.minicoil_encoder,
            "sentence_model": s.minicoil_sentence_model, "min_contexts": s.minicoil_min_contexts,
            "max_contexts": s.minicoil_max_contexts, "words_with_layers": len(getattr(model, "stems", []) or []),
            "seconds": seconds,
        })
        self._time("minicoil train", started)
        self.state.mark(RunFolder.train_stage(0))
