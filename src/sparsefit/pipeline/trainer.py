"""Fine-tuning in rounds: baselines, then (mine → train → index → evaluate) per round, the rounds'
weight average, export. Every stage writes its result into the run folder and is marked done, so a
killed run resumes from its last finished stage.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from sparsefit.config import Settings, save_settings
from sparsefit import distributed
from sparsefit.devices import resolve_device
from sparsefit.data import LabelScheme
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.evaluate import evaluate_bm25, evaluate_encoder, make_report
from sparsefit.evaluation.hybrid import evaluate_qdrant_bm25
from sparsefit.evaluation.report import Report
from sparsefit.files import make_folder, read_json, write_atomic, write_json
from sparsefit.models import Encoder, load_encoder
from sparsefit.pipeline.card import model_card
from sparsefit.pipeline.inputs import (describe_inputs, exports_average, generate_training_queries, index_location, load_inputs,
                                       product_sample)
from sparsefit.pipeline.records import DamagedCheckpoint, load_systems, read_optional, save_systems
from sparsefit.pipeline.training_round import train_rows
from sparsefit.pipeline.retrieval import RetrievalFits, feedback_summary, fusion_summary, validation_part
from sparsefit.progress import progress_bar
from sparsefit.run import RunFolder, new_run_folder


def default_positive_gains(scheme: LabelScheme) -> tuple[float, float]:
    """The gains at which a judged product is a training positive by default: (round 0, mining rounds).

    Graded scales: round 0 learns from all but the lowest third of the scale (Home Depot: labels 1.67 and up),
    the mining rounds from the top fifth (labels 2.67 and up), each against its mined negatives. Other
    schemes: their relevant threshold in every round.

    Measured on Home Depot (held-out nDCG@10, splade-tiny), round 0 by the lowest label kept as a positive:
    2.67 0.3904; 2.33 0.3948; 2.0 0.3937; 1.67 0.4010; 1.33 0.3994. From the 1.67 model, a mining round on
    labels 1.67 and up gave 0.3971 (below round 0), on labels 2.67 and up 0.4049.

    Example:
        >>> from sparsefit.data import detect_scheme
        >>> [round(g, 3) for g in default_positive_gains(detect_scheme(["1", "2.33", "3"]))]
        [0.667, 1.6]
    """
    if scheme.name == "graded" and scheme.high is not None and scheme.low is not None:
        span = scheme.high - scheme.low
        return span / 3, 0.8 * span
    return scheme.relevant_threshold, scheme.relevant_threshold


class Trainer:
    """Fine-tune a sparse encoder on a catalog in rounds, with hard negatives mined through the index.

    Each stage writes its result into the run folder and is marked done in state.json, so a killed
    run resumes from its last finished stage (``Trainer(..., resume=True)``).

    Example:
        >>> from sparsefit.config import load_settings
        >>> trainer = Trainer("examples/catalog.csv", "examples/judged_queries.csv",
        ...                   load_settings(rounds=2, output="runs/demo-train"))       # doctest: +SKIP
        >>> trainer.fit(); trainer.export()                                             # doctest: +SKIP
    """

    def __init__(
        self,
        catalog_path: str | Path,
        judgments_path: str | Path | None,
        settings: Settings,
        *,
        resume: bool = False,
        show_progress: bool = True,
    ) -> None:
        from sparsefit.run import RunState

        self.settings = settings
        self.device = resolve_device(settings.device)  # before any work: a missing GPU is a one-line error
        self.folder = Path(settings.output) if settings.output else new_run_folder("train")
        self.run = run = RunFolder(self.folder)
        if not resume and run.state_file.is_file():
            raise SparsefitError(
                "the run folder already holds a run", file=self.folder,
                hint=f"resume it with --resume {self.folder}, or pick another --output",
            )
        make_folder(self.folder)
        save_settings(settings, run.config)
        write_json(run.sources, {  # first, so that a run killed at any later moment can resume
            "catalog": str(Path(catalog_path).resolve()),
            "judgments": str(Path(judgments_path).resolve()) if judgments_path is not None else None,
        })
        self.state = RunState(self.folder)
        self.show_progress = show_progress
        self.timings: dict[str, float] = read_optional(run.timings)
        if judgments_path is None:  # no judgments: train on queries generated from the catalog
            judgments_path = run.queries
            if not self.state.done("queries"):
                started = time.perf_counter()
                info = generate_training_queries(catalog_path, settings, judgments_path, show_progress=show_progress)
                write_json(run.queries_info, info)
                self._time("queries", started)
                self.state.mark("queries")
        started = time.perf_counter()
        self.inputs = load_inputs(catalog_path, judgments_path, settings, self.folder)
        self._time("load", started)
        self.state.mark("inputs")
        write_json(run.inputs, describe_inputs(self.inputs))
        self.train = self.inputs.judgments.subset(set(self.inputs.split.train))
        self.test = self.inputs.judgments.subset(set(self.inputs.split.test))
        self.validation = validation_part(run, self.train, settings)  # kept out of training: hybrids are fitted on it
        if self.validation is not None:
            self.train = self.train.subset(set(self.train.keys()) - set(self.validation.keys()))
        self.fits = RetrievalFits(run, settings, self.validation, self.test)
        first, mined = default_positive_gains(self.inputs.judgments.scheme)
        self.positive_gains = (  # round 0, mining rounds
            first if settings.positive_min_gain is None else settings.positive_min_gain,
            mined if settings.mined_positive_min_gain is None else settings.mined_positive_min_gain,
        )
        if settings.train_products is not None and judgments_path != run.queries:
            self._sample_training_queries(settings.train_products)
        self._loaded: tuple[int, Encoder] | None = None  # (round, its model) last loaded from disk
        self._dense = None  # --dense: the dense model, loaded when first indexed
        self.repairs: list[dict] = read_json(run.repairs) if run.repairs.is_file() else []

    def _sample_training_queries(self, count: int) -> None:
        """``--train-products N``: train on the queries with a round-0 positive among a seeded sample of N products.

        Mining and evaluation still search the whole catalog (a mined negative may be any product)."""
        catalog = self.inputs.catalog
        sample = {catalog.ids[i] for i in product_sample(len(catalog), count, self.settings.seed)}
        keys = {key for key, pid, gain in zip(self.train.query_keys, self.train.product_ids, self.train.gains.tolist())
                if pid in sample and self._is_positive(gain, 0)}
        if not keys:
            raise SparsefitError(f"no training query has a positive among the {count:,} sampled products",
                                 hint="raise --train-products, or leave it out to train on every product's queries")
        before = len(set(self.train.query_keys))
        self.train = self.train.subset(keys)
        write_json(self.run.inputs, {**describe_inputs(self.inputs),
                                     "train_products": {"products": len(sample), "queries": len(keys), "of_queries": before}})

    # -- the stages ---------------------------------------------------------------------------
    def fit(self) -> Path:
        """Baselines, then every round: train, index, evaluate, mine for the next; returns the run folder."""
        self.baselines()
        round_no = 0
        for trained in [n for n in range(self.settings.rounds) if self.state.done(RunFolder.train_stage(n))]:
            try:  # a resumed run checks that its finished rounds' checkpoints still load
                self._encoder_after(trained)
            except DamagedCheckpoint as damaged:
                self._redo_from(damaged.round, damaged.reason)
                break
        while round_no < self.settings.rounds:
            try:
                self._round(round_no)
                round_no += 1
            except DamagedCheckpoint as damaged:  # e.g. a disk error: redo that round, keep the ones before
                self._redo_from(damaged.round, damaged.reason)
                round_no = damaged.round
        if exports_average(self.settings):
            self._average()
        self._hybrid_stage()
        return self.folder

    def _hybrid_stage(self) -> None:
        """The exported model fused with Qdrant's BM25 (weights fitted on the validation queries), on the test queries."""
        if self.state.done(RunFolder.HYBRID):
            return
        started = time.perf_counter()
        folder = self.final_model_folder()
        encoder = load_encoder(str(folder), max_seq_length=self.settings.max_seq_length, device=self.device)
        index, _ = self._index_for(encoder, None)
        with index:
            systems = self.fits.hybrids(encoder, index, "tuned", "hybrid (tuned)", self.dense)
            self.fits.feedback(encoder, index)
        if systems:
            save_systems(self.run.hybrid, systems)
        self._time("hybrid", started)
        self.state.mark(RunFolder.HYBRID)

    def _redo_from(self, round_no: int, reason: str) -> None:
        from sparsefit.progress import console

        forgotten = [s for s in self.state.stages if s in (RunFolder.EXPORT, RunFolder.HYBRID) or s.startswith(RunFolder.AVERAGE)
                     or (RunFolder.stage_round(s) is not None and RunFolder.stage_round(s) >= round_no)]
        self.state.forget(forgotten)
        self._loaded = None
        self.repairs.append({"round": round_no, "reason": reason, "redone": forgotten})
        write_json(self.run.repairs, self.repairs)
        console.print(f"[yellow]The checkpoint of round {round_no} is damaged ({reason}); training round {round_no} again "
                      f"(rounds before it are kept).[/]")

    def baselines(self) -> None:
        """BM25 and the untuned base model on the held-out queries (once per run)."""
        if self.state.done(RunFolder.BASELINES):
            return
        started = time.perf_counter()
        systems = []
        if self.settings.bm25:
            systems.append(evaluate_bm25(self.inputs.catalog, self.test, retrieve_k=self.settings.retrieve_k))
        base = self._load_base()
        index, _ = self._index_for(base, self.run.vectors(self.run.baselines))
        with index:
            if self.settings.bm25:
                systems.append(evaluate_qdrant_bm25(index, self.test, retrieve_k=self.settings.retrieve_k))
            systems.append(evaluate_encoder(base, index, self.test, name=f"base ({self.settings.base_model})",
                                            retrieve_k=self.settings.retrieve_k, batch_size=self.settings.batch_size))
            if self.dense is not None:
                from sparsefit.evaluation.hybrid import evaluate_dense

                systems.append(evaluate_dense(self.dense, index, self.test, retrieve_k=self.settings.retrieve_k))
            systems += self.fits.hybrids(base, index, "base", "hybrid (base)", self.dense)
        save_systems(self.run.baselines, systems)
        self._time("baselines", started)
        self.state.mark(RunFolder.BASELINES)

    def _round(self, n: int) -> None:
        folder = self.run.round(n)
        if self.state.done(self.run.evaluate_stage(n)):
            return
        if not self.state.done(RunFolder.train_stage(n)):
            rows = self._rows(n)
            encoder = self._encoder_before(n)
            started = time.perf_counter()
            stats = self._train(encoder, rows, n)
            encoder.save(RunFolder.stage_model(folder))
            write_json(self.run.training(n), {**dataclasses.asdict(stats), "positive_min_gain": self._positive_gain(n)})
            self._time(f"round {n} train", started)
            self.state.mark(RunFolder.train_stage(n))
        self._index_and_evaluate(self._encoder_after(n), folder, f"round {n}")
        self.state.mark(RunFolder.evaluate_stage(n))

    def _index_and_evaluate(self, encoder: Encoder, folder: Path, name: str) -> None:
        """Index the catalog with ``encoder`` (the run's index) and save its held-out metrics as system ``name``."""
        started = time.perf_counter()
        index, _ = self._index_for(encoder, self.run.vectors(folder))
        self._time(f"{name} index", started)
        with index:
            started = time.perf_counter()
            result = evaluate_encoder(encoder, index, self.test, name=name, retrieve_k=self.settings.retrieve_k,
                                      batch_size=self.settings.batch_size)
            save_systems(folder, [result])
            self._time(f"{name} evaluate", started)

    def _average(self) -> None:
        """Average the weights of every round's model into ``average/model``, index and evaluate it like a round."""
        from sparsefit.models import average_encoders

        if self.state.done(RunFolder.AVERAGE_EVALUATED):
            return
        folder = self.run.average
        started = time.perf_counter()
        rounds = [RunFolder.stage_model(self.run.round(n)) for n in range(self.settings.rounds)]
        encoder = average_encoders(rounds, max_seq_length=self.settings.max_seq_length,
                                   name=f"average of rounds 0–{self.settings.rounds - 1}").to(self.device)
        encoder.save(RunFolder.stage_model(folder))
        self._time("average", started)
        self._index_and_evaluate(encoder, folder, encoder.name)
        self.state.mark(RunFolder.AVERAGE_EVALUATED)

    def _rows(self, n: int) -> list[dict[str, str]]:
        """Training rows for round ``n``: pairs in round 0; pairs plus mined negatives after."""
        pairs = self._pairs(n)
        if n == 0:
            return [{"query": self.train.query_text(k), "positive": self._text(p)} for k, p in pairs]
        negatives_file = self.run.negatives(n)
        if not negatives_file.is_file():
            started = time.perf_counter()
            negatives = self._mine(n)
            write_json(negatives_file, negatives)
            self._time(f"round {n} mine", started)
        negatives = read_json(negatives_file)["negatives"]
        rows, seen = [], {}
        for key, pid in pairs:
            i = seen.get(key, 0)
            seen[key] = i + 1
            row = {"query": self.train.query_text(key), "positive": self._text(pid)}
            for j, neg in enumerate(negatives[key][i]):
                row[f"negative_{j + 1}"] = self._text(neg)
            rows.append(row)
        return rows

    def _mine(self, n: int) -> dict:
        from sparsefit.mining import MiningOptions, mine_negatives

        encoder = self._encoder_after(n - 1)
        index, vectors = self._index_for(encoder, self.run.vectors(self.run.round(n - 1)))
        positives: dict[str, list[str]] = {}
        for key, pid in self._pairs(n):
            positives.setdefault(key, []).append(pid)
        # Never a negative for its query: a product judged above the scale's zero for it (an ESCI Substitute
        # is not wrong for its query; 16% of a demo run's mined negatives once were), unless asked for.
        threshold = self.train.scheme.relevant_threshold
        excluded: dict[str, list[str]] = {}
        for key, pid, gain in zip(self.train.query_keys, self.train.product_ids, self.train.gains.tolist()):
            judged_relevant = gain >= threshold if self.settings.mine_judged_partials else gain > 0
            if judged_relevant or self._is_positive(gain, n):
                excluded.setdefault(key, []).append(pid)
        options = MiningOptions(
            negatives=self.settings.negatives, top_k=self.settings.mining_top_k, strategy=self.settings.mining_strategy,
            false_negative_fraction=self.settings.false_negative_fraction, seed=self.settings.seed + n,
        )
        with index, progress_bar(f"round {n}: mining {len(positives):,} queries", len(positives),
                                 enabled=self.show_progress) as advance:
            negatives, stats = mine_negatives(
                encoder, index, {k: self.train.query_text(k) for k in positives}, positives, excluded,
                vectors, self.inputs.catalog, options, batch_size=self.settings.batch_size, progress=advance,
            )
        write_json(self.run.mining(n), stats.as_dict())
        return {"negatives": negatives}

    def _train(self, encoder: Encoder, rows: list[dict[str, str]], n: int):
        return train_rows(encoder, rows, n, self.settings, self.device, self.run, show_progress=self.show_progress)

    # -- helpers ------------------------------------------------------------------------------
    def _positive_gain(self, n: int) -> float:
        """The gain at which a judged product is a training positive in round ``n``."""
        return self.positive_gains[0 if n == 0 else 1]

    def _is_positive(self, gain: float, n: int) -> bool:
        return gain >= self._positive_gain(n) - 1e-9  # gains like 2/3 are stored rounded

    def _pairs(self, n: int) -> list[tuple[str, str]]:
        """(query key, positive product id) for every training judgment at or above round ``n``'s positive gain."""
        return [
            (key, pid)
            for key, pid, gain in zip(self.train.query_keys, self.train.product_ids, self.train.gains.tolist())
            if self._is_positive(gain, n)
        ]

    def _text(self, product_id: str) -> str:
        catalog = self.inputs.catalog
        return catalog.texts[catalog.position(product_id)]

    def _load_base(self) -> Encoder:
        return load_encoder(self.settings.base_model, architecture=self.settings.architecture,
                            max_seq_length=self.settings.max_seq_length, device=self.device)

    def _encoder_before(self, n: int) -> Encoder:
        return self._load_base() if n == 0 else self._encoder_after(n - 1)

    def _encoder_after(self, n: int) -> Encoder:
        folder = RunFolder.stage_model(self.run.round(n))
        if self._loaded is None or self._loaded[0] != n:
            try:
                self._loaded = (n, load_encoder(str(folder), max_seq_length=self.settings.max_seq_length,
                                                 device=self.device))
            except Exception as exc:  # a checkpoint we wrote that no longer loads is damaged, whatever the error
                raise DamagedCheckpoint(n, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}") from exc
        return self._loaded[1]

    @property
    def dense(self):
        """``--dense``: the dense model indexed beside the sparse vectors (None without it)."""
        if self._dense is None and self.settings.dense:
            from sparsefit.models.dense import load_dense

            self._dense = load_dense(self.settings.dense, device=self.device, max_seq_length=self.settings.max_seq_length)
        return self._dense

    def _index_for(self, encoder: Encoder, vectors_file: Path):
        """The catalog index for ``encoder`` and the catalog's vectors (reopened when complete, else rebuilt)."""
        from sparsefit.indexing import catalog_index

        # Under torchrun every rank encodes a share of the catalog (one process: the encoder itself).
        return catalog_index(distributed.ShardedEncoder(encoder), self.inputs.catalog, index_location(self.settings, self.run.index),
                             batch_size=self.settings.batch_size, show_progress=self.show_progress,
                             vectors_file=vectors_file, dense=self.dense)

    def _time(self, stage: str, started: float) -> None:
        self.timings[stage] = round(time.perf_counter() - started, 2)
        write_json(self.run.timings, self.timings)

    # -- results ------------------------------------------------------------------------------
    def report(self) -> Report:
        """Baselines and every finished round on the same held-out queries."""
        systems = load_systems(self.run.baselines)
        for n in range(self.settings.rounds):
            if self.state.done(RunFolder.evaluate_stage(n)):
                systems += load_systems(self.run.round(n))
        if self.state.done(RunFolder.AVERAGE_EVALUATED):
            systems += load_systems(self.run.average)
        if self.state.done(RunFolder.HYBRID) and RunFolder.metrics(self.run.hybrid).is_file():
            systems += load_systems(self.run.hybrid)
        return make_report(systems, self.test, len(self.inputs.catalog))

    def export(self) -> Path:
        """Copy the final model (the rounds' average, or the last round's) to ``model/``, write report.json and the model card.

        Returns the model folder.
        """
        import shutil

        from sparsefit.files import atomic_folder

        target = self.run.model
        if self.state.done(RunFolder.EXPORT) and target.is_dir():  # a resumed finished run: nothing changed, nothing rewritten
            return target
        with atomic_folder(target) as temporary:  # `serve` never sees a half-copied model/
            shutil.copytree(self.final_model_folder(), temporary, dirs_exist_ok=True)
        report = self.report()
        report.save(self.folder)
        notes = [line for line in (fusion_summary(self.run), feedback_summary(self.run)) if line]
        write_atomic(self.run.card, model_card(report, self.settings, self.timings, self.inputs, notes))
        self._fit_confidence(target)
        self.state.mark(RunFolder.EXPORT)
        return target

    def _fit_confidence(self, model_folder: Path) -> None:
        """Fit the per-hit confidence on the held-out queries, as ``serve`` would, so ``sparsefit search``
        shows it straight after training. A run whose held-out hits cannot give it (one class only) is
        served without it, and ``confidence_problem.txt`` says why."""
        from sparsefit.evaluation.confidence import fit_on_held_out

        problem_file = self.run.confidence_problem
        encoder = load_encoder(str(model_folder), max_seq_length=self.settings.max_seq_length, device=self.device)
        index, _ = self._index_for(encoder, None)
        with index:
            try:
                fit_on_held_out(encoder, index, self.test, self.folder)
            except SparsefitError as exc:
                write_atomic(problem_file, f"{exc}\n")
                self.run.confidence.unlink(missing_ok=True)  # an earlier export's, for another model
                return
        problem_file.unlink(missing_ok=True)

    def final_model_folder(self) -> Path:
        """The model that is exported: the rounds' average when it was made, else the last evaluated round's."""
        if self.state.done(RunFolder.AVERAGE_EVALUATED):
            return RunFolder.stage_model(self.run.average)
        last = max(n for n in range(self.settings.rounds) if self.state.done(RunFolder.evaluate_stage(n)))
        return RunFolder.stage_model(self.run.round(last))

