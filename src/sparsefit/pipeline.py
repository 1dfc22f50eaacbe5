"""The order of the stages: (generate queries) → load → split → baselines → rounds of (mine → train → index → evaluate) → export.

This is the only module that knows that order; each stage lives in its own module.

Example:
    >>> from sparsefit.config import load_settings
    >>> report, folder = run_evaluation("examples/catalog.csv", "examples/judged_queries.csv",
    ...                                 load_settings(output="runs/demo"))   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sparsefit.config import Settings, save_settings
from sparsefit.data import Catalog, Judgments, LabelScheme, Split, load_catalog, load_judgments, split_queries
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.evaluate import evaluate, evaluate_bm25, evaluate_encoder, make_report
from sparsefit.evaluation.report import Report, SystemResult
from sparsefit.index import TwoStage
from sparsefit.models import Encoder, load_encoder
from sparsefit.progress import progress_bar
from sparsefit.run import make_folder, new_run_folder, read_json, write_atomic, write_json

SPLIT_FILE = "split.json"
QUERIES_FILE = "queries.jsonl"  # generated training queries, when no judgments are given
CONFIDENCE_PROBLEM_FILE = "confidence_problem.txt"  # why a run has no confidence.json
AVERAGE = "average"  # the weight average of the rounds' models (the exported model by default)


@dataclass
class Inputs:
    """The loaded, validated inputs of a run."""

    catalog: Catalog
    judgments: Judgments
    split: Split
    test_judgments: Judgments | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def load_inputs(catalog_path: str | Path, judgments_path: str | Path, settings: Settings, folder: Path) -> Inputs:
    """Load the catalog and judgments with ``settings`` and decide (or reuse) the query split."""
    started = time.perf_counter()
    catalog = load_catalog(catalog_path, **catalog_options(settings))
    judgment_options = judgments_options(settings)
    judgments = load_judgments(judgments_path, catalog, **judgment_options)
    test_judgments = None
    if settings.test_judgments is not None:
        if judgments.scheme.name == "binary" and settings.label_scheme is None:
            # Binary training data (e.g. generated queries) next to graded or ESCI test judgments:
            # the test file keeps its own scheme, and the binary positives take its top gain.
            test_judgments = load_judgments(settings.test_judgments, catalog, **judgment_options)
            if test_judgments.scheme.name != "binary":
                judgments = judgments.binary_on(test_judgments.scheme)
            # A training query that is also a test query is held out: its training rows are left out (counted).
            test_keys = set(test_judgments.query_keys)
            kept = [k for k in judgments.keys() if k not in test_keys]
            if len(kept) < len(judgments.keys()):
                left_out = len(judgments) - len(judgments.subset(kept))
                judgments = dataclasses.replace(judgments.subset(kept), skipped={
                    **judgments.skipped, "training query equal to a test query (left out)": left_out})
        else:
            # The very same gains for the test file: a graded range is otherwise detected per file.
            test_judgments = load_judgments(settings.test_judgments, catalog, **{**judgment_options, "scheme": judgments.scheme})
        judgments = judgments.merge(test_judgments)
    loaded = time.perf_counter()
    split = _decide_split(judgments, test_judgments, settings, folder)
    return Inputs(catalog, judgments, split, test_judgments, {"load": loaded - started, "split": time.perf_counter() - loaded})


def catalog_options(settings: Settings) -> dict:
    """Keyword arguments of :func:`load_catalog` from the settings."""
    return dict(id_field=settings.id_field, text_fields=settings.text_fields, template=settings.template,
                on_invalid=settings.on_invalid, encoding=settings.encoding,
                max_decompressed_bytes=settings.max_decompressed_mb * 1024**2)


def judgments_options(settings: Settings) -> dict:
    """Keyword arguments of :func:`load_judgments` from the settings."""
    return dict(
        query_field=settings.query_field, id_field=settings.judgment_id_field, label_field=settings.label_field,
        scheme=settings.label_scheme, gains=settings.gains, relevant_threshold=settings.relevant_threshold,
        on_invalid=settings.on_invalid, on_unknown_product=settings.on_unknown_product,
        on_conflict=settings.on_conflict, encoding=settings.encoding,
        max_decompressed_bytes=settings.max_decompressed_mb * 1024**2,
    )


def _decide_split(judgments: Judgments, test_judgments: Judgments | None, settings: Settings, folder: Path) -> Split:
    """Reuse ``--split`` or the folder's saved split when there is one; otherwise make and save one."""
    saved = settings.split_file or (folder / SPLIT_FILE if (folder / SPLIT_FILE).is_file() else None)
    if saved is not None:
        split = Split.load(saved)
        split.check(judgments)
    else:
        split = split_queries(
            judgments, test_fraction=settings.test_fraction, seed=settings.seed, test_judgments=test_judgments
        )
    split.save(folder / SPLIT_FILE)
    return split


def run_evaluation(
    catalog_path: str | Path, judgments_path: str | Path, settings: Settings, *, show_progress: bool = True
) -> tuple[Report, Path, Inputs]:
    """Load, split, evaluate BM25 and ``settings.models`` on the held-out queries, save everything."""
    folder = make_folder(Path(settings.output) if settings.output else new_run_folder("evaluate"))
    save_settings(settings, folder / "config.yaml")
    inputs = load_inputs(catalog_path, judgments_path, settings, folder)
    report = evaluate(
        inputs.catalog, inputs.judgments, inputs.split,
        models=settings.models, bm25=settings.bm25,
        index_root=None if settings.qdrant_url else folder / "indexes",
        qdrant_url=settings.qdrant_url,
        qdrant_api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None,
        collection=settings.collection, retrieve_k=settings.retrieve_k, batch_size=settings.batch_size,
        max_seq_length=settings.max_seq_length, architecture=settings.architecture, show_progress=show_progress,
        two_stage=two_stage_of(settings),
    )
    report.save(folder)
    write_json(folder / "inputs.json", describe_inputs(inputs))
    return report, folder, inputs


def generate_training_queries(
    catalog_path: str | Path, settings: Settings, target: Path, *, show_progress: bool = True
) -> dict:
    """Write generated training queries to ``target`` (JSON lines) and return what was done.

    Offline by default; an LLM when ``settings.llm_model`` is set (its answers are cached under
    ``$XDG_CACHE_HOME/sparsefit/llm``, so a rerun after an interruption does not pay twice).

    Example:
        >>> from sparsefit.config import load_settings
        >>> generate_training_queries("examples/catalog.csv", load_settings(), Path("queries.jsonl"))  # doctest: +SKIP
        {'source': 'offline', 'products': 400, 'queries': 800, ...}
    """
    import numpy as np

    from sparsefit.queries import LLMQueryGenerator, OfflineQueryGenerator, write_queries

    catalog = load_catalog(catalog_path, **catalog_options(settings))
    positions = list(range(len(catalog)))
    if settings.query_products is not None and settings.query_products < len(catalog):
        rng = np.random.default_rng(settings.seed)
        positions = sorted(rng.choice(len(catalog), size=settings.query_products, replace=False).tolist())
    started = time.perf_counter()
    if settings.llm_model:
        prompt = settings.llm_prompt_file.read_text(encoding="utf-8") if settings.llm_prompt_file else None
        generator = LLMQueryGenerator(
            settings.llm_url or "https://api.openai.com/v1", settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            per_product=settings.queries_per_product, products_per_request=settings.llm_products_per_request,
            concurrency=settings.llm_concurrency, max_retries=settings.llm_max_retries, prompt_template=prompt,
            cache_dir=llm_cache_dir(),
        )
        with progress_bar(f"asking {settings.llm_model} for queries", len(positions), enabled=show_progress) as advance:
            queries, report = generator.generate(catalog, product_positions=positions, progress=advance)
        info = {"source": f"llm:{settings.llm_model}", **report.as_dict()}
        if not queries:
            raise SparsefitError(f"the LLM gave no usable queries ({report.errors or 'no answers'})",
                                 hint="check --llm-url, --llm-model and the API key (SPARSEFIT_LLM_API_KEY)")
    else:
        generator = OfflineQueryGenerator(catalog, seed=settings.seed, typo_rate=settings.query_typo_rate)
        queries = []
        with progress_bar("generating queries from the catalog", len(positions), enabled=show_progress) as advance:
            for i in positions:
                queries.extend(generator.for_product(i, settings.queries_per_product))
                advance(1)
        covered = len({q.product_id for q in queries})
        info = {"source": "offline", "products": len(positions), "products_with_queries": covered,
                "generated": len(queries), "kinds": dict(sorted(Counter(q.kind for q in queries).items()))}
    info["seconds"] = round(time.perf_counter() - started, 2)
    write_queries(queries, target)
    return info


def llm_cache_dir() -> Path:
    """Where LLM answers are cached, shared by all runs (keyed by model, prompt and product text)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sparsefit" / "llm"


def describe_inputs(inputs: Inputs) -> dict:
    """What was loaded and detected, for the run folder and for ``sparsefit inspect``."""
    catalog, judgments = inputs.catalog, inputs.judgments
    return {
        "catalog": {
            "file": str(catalog.source), "products": len(catalog), "id_field": catalog.id_field,
            "text_fields": catalog.text_fields, "template": catalog.template, "skipped": catalog.skipped,
        },
        "judgments": {
            "file": str(judgments.source), "judgments": len(judgments.product_ids), "queries": len(judgments.keys()),
            "query_field": judgments.query_field, "id_field": judgments.id_field, "label_field": judgments.label_field,
            "label_scheme": judgments.scheme.describe(), "unknown_products": judgments.unknown_products,
            "unknown_examples": judgments.unknown_examples, "conflict_examples": judgments.conflict_examples,
            "skipped": judgments.skipped,
        },
        "split": {"train": len(inputs.split.train), "test": len(inputs.split.test), "seed": inputs.split.seed,
                  "method": inputs.split.method},
        "seconds": inputs.seconds,
    }


# -- fine-tuning ------------------------------------------------------------------------------------
def exports_average(settings: Settings) -> bool:
    """True when the exported model is the weight average of the rounds (``--export-model average``, 2+ rounds)."""
    return settings.export_model == "average" and settings.rounds > 1


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
        self.folder = Path(settings.output) if settings.output else new_run_folder("train")
        if not resume and (self.folder / "state.json").is_file():
            raise SparsefitError(
                "the run folder already holds a run", file=self.folder,
                hint=f"resume it with --resume {self.folder}, or pick another --output",
            )
        make_folder(self.folder)
        save_settings(settings, self.folder / "config.yaml")
        write_json(self.folder / "run.json", {  # first, so that a run killed at any later moment can resume
            "catalog": str(Path(catalog_path).resolve()),
            "judgments": str(Path(judgments_path).resolve()) if judgments_path is not None else None,
        })
        self.state = RunState(self.folder)
        self.show_progress = show_progress
        self.timings: dict[str, float] = _read_optional(self.folder / "timings.json")
        if judgments_path is None:  # no judgments: train on queries generated from the catalog
            judgments_path = self.folder / QUERIES_FILE
            if not self.state.done("queries"):
                started = time.perf_counter()
                info = generate_training_queries(catalog_path, settings, judgments_path, show_progress=show_progress)
                write_json(self.folder / "queries.json", info)
                self._time("queries", started)
                self.state.mark("queries")
        started = time.perf_counter()
        self.inputs = load_inputs(catalog_path, judgments_path, settings, self.folder)
        self._time("load", started)
        self.state.mark("inputs")
        write_json(self.folder / "inputs.json", describe_inputs(self.inputs))
        self.train = self.inputs.judgments.subset(set(self.inputs.split.train))
        self.test = self.inputs.judgments.subset(set(self.inputs.split.test))
        first, mined = default_positive_gains(self.inputs.judgments.scheme)
        self.positive_gains = (  # round 0, mining rounds
            first if settings.positive_min_gain is None else settings.positive_min_gain,
            mined if settings.mined_positive_min_gain is None else settings.mined_positive_min_gain,
        )
        self._loaded: tuple[int, Encoder] | None = None  # (round, its model) last loaded from disk
        self.repairs: list[dict] = read_json(self.folder / "repairs.json") if (self.folder / "repairs.json").is_file() else []

    # -- the stages ---------------------------------------------------------------------------
    def fit(self) -> Path:
        """Baselines, then every round: train, index, evaluate, mine for the next; returns the run folder."""
        self.baselines()
        round_no = 0
        for trained in [n for n in range(self.settings.rounds) if self.state.done(f"round-{n}/train")]:
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
        return self.folder

    def _redo_from(self, round_no: int, reason: str) -> None:
        from sparsefit.progress import console

        forgotten = [s for s in self.state.stages if s == "export" or s.startswith(AVERAGE)
                     or (s.startswith("round-") and int(s[6:].split("/")[0]) >= round_no)]
        self.state.forget(forgotten)
        self._loaded = None
        self.repairs.append({"round": round_no, "reason": reason, "redone": forgotten})
        write_json(self.folder / "repairs.json", self.repairs)
        console.print(f"[yellow]The checkpoint of round {round_no} is damaged ({reason}); training round {round_no} again "
                      f"(rounds before it are kept).[/]")

    def baselines(self) -> None:
        """BM25 and the untuned base model on the held-out queries (once per run)."""
        if self.state.done("baselines"):
            return
        started = time.perf_counter()
        systems = []
        if self.settings.bm25:
            systems.append(evaluate_bm25(self.inputs.catalog, self.test, retrieve_k=self.settings.retrieve_k))
        base = self._load_base()
        index, _ = self._index_for(base, self.folder / "baselines" / "catalog_vectors.npz")
        with index:
            systems.append(evaluate_encoder(base, index, self.test, name=f"base ({self.settings.base_model})",
                                            retrieve_k=self.settings.retrieve_k, batch_size=self.settings.batch_size))
        _save_systems(self.folder / "baselines", systems)
        self._time("baselines", started)
        self.state.mark("baselines")

    def _round(self, n: int) -> None:
        folder = self.folder / "rounds" / str(n)
        if self.state.done(f"round-{n}/evaluate"):
            return
        if not self.state.done(f"round-{n}/train"):
            rows = self._rows(n)
            encoder = self._encoder_before(n)
            started = time.perf_counter()
            stats = self._train(encoder, rows, n)
            encoder.save(folder / "model")
            write_json(folder / "training.json", {**dataclasses.asdict(stats), "positive_min_gain": self._positive_gain(n)})
            self._time(f"round {n} train", started)
            self.state.mark(f"round-{n}/train")
        self._index_and_evaluate(self._encoder_after(n), folder, f"round {n}")
        self.state.mark(f"round-{n}/evaluate")

    def _index_and_evaluate(self, encoder: Encoder, folder: Path, name: str) -> None:
        """Index the catalog with ``encoder`` (the run's index) and save its held-out metrics as system ``name``."""
        started = time.perf_counter()
        index, _ = self._index_for(encoder, folder / "catalog_vectors.npz")
        self._time(f"{name} index", started)
        with index:
            started = time.perf_counter()
            result = evaluate_encoder(encoder, index, self.test, name=name, retrieve_k=self.settings.retrieve_k,
                                      batch_size=self.settings.batch_size)
            _save_systems(folder, [result])
            self._time(f"{name} evaluate", started)

    def _average(self) -> None:
        """Average the weights of every round's model into ``average/model``, index and evaluate it like a round."""
        from sparsefit.models import average_encoders

        if self.state.done("average/evaluate"):
            return
        folder = self.folder / AVERAGE
        started = time.perf_counter()
        rounds = [self.folder / "rounds" / str(n) / "model" for n in range(self.settings.rounds)]
        encoder = average_encoders(rounds, max_seq_length=self.settings.max_seq_length,
                                   name=f"average of rounds 0–{self.settings.rounds - 1}")
        encoder.save(folder / "model")
        self._time("average", started)
        self._index_and_evaluate(encoder, folder, encoder.name)
        self.state.mark("average/evaluate")

    def _rows(self, n: int) -> list[dict[str, str]]:
        """Training rows for round ``n``: pairs in round 0; pairs plus mined negatives after."""
        pairs = self._pairs(n)
        if n == 0:
            return [{"query": self.train.query_text(k), "positive": self._text(p)} for k, p in pairs]
        negatives_file = self.folder / "rounds" / str(n) / "negatives.json"
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
        index, vectors = self._index_for(encoder, self.folder / "rounds" / str(n - 1) / "catalog_vectors.npz")
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
        write_json(self.folder / "rounds" / str(n) / "mining.json", stats.as_dict())
        return {"negatives": negatives}

    def _train(self, encoder: Encoder, rows: list[dict[str, str]], n: int):
        from sparsefit.training import TrainingOptions, resolved_precision, steps_for, train_round

        s = self.settings
        options = TrainingOptions(
            batch_size=s.train_batch_size, learning_rate=s.learning_rate, static_learning_rate=s.static_learning_rate,
            epochs=self._epochs(n), query_regularizer_weight=s.query_regularizer_weight,
            document_regularizer_weight=s.document_regularizer_weight, max_seq_length=s.train_max_seq_length,
            precision=resolved_precision(s.train_precision, encoder.hidden_size), seed=s.seed + n,
        )
        total = steps_for(len(rows), min(s.train_batch_size, len(rows)), options.epochs)
        live = LiveTraining(self.folder / "live.json", n, total)
        with progress_bar(f"round {n}: training on {len(rows):,} rows", total, enabled=self.show_progress) as advance:

            def on_step(step: int, steps: int, loss: float | None) -> None:
                advance(1)
                live.update(step, steps, loss)

            stats = train_round(encoder, rows, options, self.folder / "rounds" / str(n) / "trainer", on_step=on_step)
        live.update(total, total, None, finished=True)
        encoder.model.max_seq_length = s.max_seq_length
        return stats

    # -- helpers ------------------------------------------------------------------------------
    def _positive_gain(self, n: int) -> float:
        """The gain at which a judged product is a training positive in round ``n``."""
        return self.positive_gains[0 if n == 0 else 1]

    def _epochs(self, n: int) -> float:
        """Epochs over the training rows in round ``n``."""
        mining = self.settings.mining_epochs
        return self.settings.epochs if n == 0 or mining is None else mining

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
                            max_seq_length=self.settings.max_seq_length)

    def _encoder_before(self, n: int) -> Encoder:
        return self._load_base() if n == 0 else self._encoder_after(n - 1)

    def _encoder_after(self, n: int) -> Encoder:
        folder = self.folder / "rounds" / str(n) / "model"
        if self._loaded is None or self._loaded[0] != n:
            try:
                self._loaded = (n, load_encoder(str(folder), max_seq_length=self.settings.max_seq_length))
            except Exception as exc:  # a checkpoint we wrote that no longer loads is damaged, whatever the error
                raise DamagedCheckpoint(n, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}") from exc
        return self._loaded[1]

    def _index_for(self, encoder: Encoder, vectors_file: Path):
        """The catalog index for ``encoder`` and the catalog's vectors (reopened when complete, else rebuilt)."""
        from sparsefit.evaluation.evaluate import catalog_index

        return catalog_index(
            encoder, self.inputs.catalog, path=None if self.settings.qdrant_url else self.folder / "index",
            url=self.settings.qdrant_url, api_key=_secret(self.settings), collection=self.settings.collection,
            batch_size=self.settings.batch_size, show_progress=self.show_progress, vectors_file=vectors_file,
            two_stage=two_stage_of(self.settings),
        )

    def _time(self, stage: str, started: float) -> None:
        self.timings[stage] = round(time.perf_counter() - started, 2)
        write_json(self.folder / "timings.json", self.timings)

    # -- results ------------------------------------------------------------------------------
    def report(self) -> Report:
        """Baselines and every finished round on the same held-out queries."""
        systems = _load_systems(self.folder / "baselines")
        for n in range(self.settings.rounds):
            if self.state.done(f"round-{n}/evaluate"):
                systems += _load_systems(self.folder / "rounds" / str(n))
        if self.state.done("average/evaluate"):
            systems += _load_systems(self.folder / AVERAGE)
        return make_report(systems, self.test, len(self.inputs.catalog))

    def export(self) -> Path:
        """Copy the final model (the rounds' average, or the last round's) to ``model/``, write report.json and the model card.

        Returns the model folder.
        """
        import shutil

        from sparsefit.run import atomic_folder

        target = self.folder / "model"
        if self.state.done("export") and target.is_dir():  # a resumed finished run: nothing changed, nothing rewritten
            return target
        with atomic_folder(target) as temporary:  # `serve` never sees a half-copied model/
            shutil.copytree(self.final_model_folder(), temporary, dirs_exist_ok=True)
        report = self.report()
        report.save(self.folder)
        write_atomic(self.folder / "README.md", model_card(report, self.settings, self.timings, self.inputs))
        self._fit_confidence(target)
        self.state.mark("export")
        return target

    def _fit_confidence(self, model_folder: Path) -> None:
        """Fit the per-hit confidence on the held-out queries, as ``serve`` would, so ``sparsefit search``
        shows it straight after training. A run whose held-out hits cannot give it (one class only) is
        served without it, and ``confidence_problem.txt`` says why."""
        from sparsefit.evaluation.confidence import FILE as CONFIDENCE_FILE
        from sparsefit.evaluation.confidence import fit_on_held_out

        problem_file = self.folder / CONFIDENCE_PROBLEM_FILE
        encoder = load_encoder(str(model_folder), max_seq_length=self.settings.max_seq_length)
        index, _ = self._index_for(encoder, None)
        with index:
            try:
                fit_on_held_out(encoder, index, self.test, self.folder)
            except SparsefitError as exc:
                write_atomic(problem_file, f"{exc}\n")
                (self.folder / CONFIDENCE_FILE).unlink(missing_ok=True)  # an earlier export's, for another model
                return
        problem_file.unlink(missing_ok=True)

    def final_model_folder(self) -> Path:
        """The model that is exported: the rounds' average when it was made, else the last evaluated round's."""
        if self.state.done("average/evaluate"):
            return self.folder / AVERAGE / "model"
        last = max(n for n in range(self.settings.rounds) if self.state.done(f"round-{n}/evaluate"))
        return self.folder / "rounds" / str(last) / "model"


class LiveTraining:
    """``live.json``: the training round in progress, its step and its loss curve so far (read by the studio)."""

    def __init__(self, file: Path, round_no: int, total: int) -> None:
        self.file, self.round, self.total = file, round_no, total
        self.losses: list[dict[str, float]] = []
        self._last_loss: float | None = None
        self.last_write = 0.0

    def update(self, step: int, steps: int, loss: float | None, *, finished: bool = False) -> None:
        if loss is not None and loss != self._last_loss:
            self._last_loss = loss
            self.losses.append({"step": step, "loss": round(loss, 5)})
        now = time.perf_counter()
        if finished or now - self.last_write >= 1.0:  # at most once a second
            self.last_write = now
            write_json(self.file, {"round": self.round, "step": step, "steps": max(steps, step), "finished": finished,
                                   "losses": self.losses})


class DamagedCheckpoint(Exception):
    """A finished round's saved model no longer loads; the round is trained again."""

    def __init__(self, round_no: int, reason: str) -> None:
        super().__init__(f"round {round_no}: {reason}")
        self.round = round_no
        self.reason = reason


def resume_trainer(folder: str | Path, *, show_progress: bool = True) -> Trainer:
    """A Trainer for an existing run folder, with the settings and input files it was started with."""
    from sparsefit.config import load_settings

    folder = Path(folder)
    if not (folder / "run.json").is_file() or not (folder / "config.yaml").is_file():
        raise SparsefitError("not a sparsefit training run (no run.json/config.yaml)", file=folder,
                             hint="pass the folder that `sparsefit train` printed")
    paths = read_json(folder / "run.json")
    settings = load_settings(folder / "config.yaml", output=folder)
    _refuse_changed_settings(settings, folder / "config.yaml")
    return Trainer(paths["catalog"], paths["judgments"], settings, resume=True, show_progress=show_progress)


# Settings a resumed run may take from the environment: how it runs, not what it computes.
RUNTIME_SETTINGS = frozenset({"threads", "output", "host", "port", "token", "workspace", "allow_roots", "max_upload_mb",
                              "max_jobs", "qdrant_api_key", "llm_api_key"})


def _refuse_changed_settings(settings: Settings, saved_file: Path) -> None:
    """A resumed run keeps the settings it was started with: a ``SPARSEFIT_*`` variable that would change
    one (the environment outranks the saved file) is refused by name instead of silently applied."""
    from sparsefit.config import read_config_file

    saved = read_config_file(saved_file)
    now = settings.public_dict()
    changed = sorted(key for key, value in saved.items()
                     if key in now and key not in RUNTIME_SETTINGS and now[key] != value)
    if changed:
        raise SparsefitError(
            "--resume continues a run with the settings it was started with; the environment would change "
            + ", ".join(f"{key} (SPARSEFIT_{key.upper()})" for key in changed),
            file=saved_file, hint="unset those variables, or start a new run with --output")


def finetune(
    catalog: str | Path, judgments: str | Path | None = None, settings: Settings | None = None, *, resume: bool = False,
    show_progress: bool = True, **overrides,
) -> Path:
    """Fine-tune on ``catalog`` with ``judgments`` (or generated queries); returns the run folder (model in ``<run>/model``).

    Example:
        >>> run = finetune("examples/catalog.csv", "examples/judged_queries.csv", rounds=2)   # doctest: +SKIP
    """
    from sparsefit.config import load_settings

    settings = settings or load_settings(**overrides)
    trainer = Trainer(catalog, judgments, settings, resume=resume, show_progress=show_progress)
    trainer.fit()
    trainer.export()
    return trainer.folder


def model_card(report: Report, settings: Settings, timings: dict[str, float], inputs: Inputs) -> str:
    """The run's README.md: what was trained on what, and the held-out table per round."""
    base_ndcg = report.baseline.mean["ndcg@10"]
    lines = [
        f"# sparsefit model: {settings.base_model} fine-tuned on {inputs.catalog.source.name}",
        "",
        f"- Base model: `{settings.base_model}` ({settings.architecture}); {settings.rounds} rounds "
        f"(round 0 in-batch negatives, later rounds {settings.negatives} mined negative(s) per row, strategy "
        f"{settings.mining_strategy}); exported: "
        + ("the weight average of every round's model." if exports_average(settings) else "the last round's model."),
        f"- Catalog: {len(inputs.catalog):,} products; judgments: {len(inputs.judgments):,} of "
        f"{len(inputs.judgments.keys()):,} queries ({inputs.judgments.scheme.describe()}).",
        f"- Held out: {len(inputs.split.test):,} queries (seed {inputs.split.seed}); no test query was trained on.",
        "- Load it with `SparseEncoder(\"model\")` (sentence-transformers) or `sparsefit.load_encoder(\"model\")`.",
        "",
        "| system | nDCG@10 | MRR@10 | R@10 | R@100 | P@10 | nDCG@10 vs BM25 |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.systems:
        m = s.mean
        ratio = m["ndcg@10"] / base_ndcg if base_ndcg else float("nan")
        lines.append(f"| {s.name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@10']:.4f} | "
                     f"{m['recall@100']:.4f} | {m['p@10']:.4f} | {ratio:.3f}× |")
    lines += ["", "Wall time per stage (seconds): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), ""]
    return "\n".join(lines)


def two_stage_of(settings: Settings) -> TwoStage | None:
    """The two-stage search the settings ask for (None: exact search).

    Example:
        >>> two_stage_of(Settings(search_posting_cap=20000)).query_terms
        8
    """
    if settings.search_posting_cap is None:
        return None
    return TwoStage(settings.search_posting_cap, settings.search_query_terms, settings.search_candidates)


def _secret(settings: Settings) -> str | None:
    return settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None


def _read_optional(path: Path) -> dict:
    return read_json(path) if path.is_file() else {}


def _save_systems(folder: Path, systems: list[SystemResult]) -> None:
    write_json(folder / "metrics.json", [
        {"name": s.name, "kind": s.kind, "mean": s.mean, "seconds": s.seconds, "per_query": s.per_query,
         "run": {k: [[d, sc] for d, sc in v[:100]] for k, v in s.run.items()}}
        for s in systems
    ])


def _load_systems(folder: Path) -> list[SystemResult]:
    return [
        SystemResult(name=d["name"], kind=d["kind"], per_query=d["per_query"], mean=d["mean"], seconds=d["seconds"],
                     run={k: [(doc, score) for doc, score in v] for k, v in d["run"].items()})
        for d in read_json(folder / "metrics.json")
    ]
