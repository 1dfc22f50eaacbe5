"""Multi-domain training: one model fine-tuned on several catalogs at once (a model tuned on one shop
alone forgets general search; training on a second corpus beside it keeps it).

Each domain is a whole run folder of its own under ``<run>/domains/<name>/`` — its inputs, held-out
split, validation queries, index, BM25 and base-model baselines, mined negatives, per-round metrics,
hybrid fits, report and model card — so ``sparsefit search <run>/domains/<name>`` serves it like any
run. The run folder itself keeps what they share: the settings, ``domains.json``, every round's model
(trained on all domains' rows, each batch from one domain; see :mod:`sparsefit.domain_batches`), the
rounds' average, ``model/`` and a report with each domain's table plus the macro average.

Mining searches each query's own domain's index; each round is evaluated on every domain's own
held-out queries. Every stage is marked done (in the run's or the domain's state), so ``--resume``
continues from the last finished one.

Example:
    >>> from sparsefit.config import load_settings
    >>> trainer = MultiDomainTrainer("domains.yaml", load_settings(output="runs/multi"))   # doctest: +SKIP
    >>> trainer.fit(); trainer.export()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.table import Table

from sparsefit.config import Settings, save_settings
from sparsefit.data.domains import Domain, Domains, load_domains
from sparsefit.devices import resolve_device
from sparsefit.domain_batches import DomainMix, domain_probabilities
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.metrics import METRICS
from sparsefit.evaluation.report import Report
from sparsefit.files import atomic_folder, make_folder, read_json, write_atomic, write_json
from sparsefit.models import Encoder, average_encoders, load_encoder
from sparsefit.pipeline.inputs import exports_average
from sparsefit.pipeline.records import DamagedCheckpoint, read_optional
from sparsefit.pipeline.trainer import Trainer
from sparsefit.pipeline.training_round import train_rows
from sparsefit.run import RunFolder, RunState, new_run_folder

DOMAINS_FILE = "domains.json"
AVERAGE_MADE = "average/model"


def is_multi_domain(folder: str | Path) -> bool:
    """Whether ``folder`` is a multi-domain run (it has ``domains.json``)."""
    return (Path(folder) / DOMAINS_FILE).is_file()


class DomainTrainer(Trainer):
    """One domain of a multi-domain run: a Trainer whose models are the run's shared ones."""

    def __init__(self, parent: MultiDomainTrainer, domain: Domain, settings: Settings, *, resume: bool,
                 show_progress: bool) -> None:
        self.parent = parent
        self.domain = domain
        super().__init__(domain.catalog, domain.judgments, settings, resume=resume, show_progress=show_progress)

    def _encoder_after(self, n: int) -> Encoder:
        return self.parent.encoder_after(n)

    def final_model_folder(self) -> Path:
        return self.parent.final_model_folder()


class MultiDomainTrainer:
    """Fine-tune one sparse encoder on several catalogs (a domains file, or :class:`Domains`), in rounds."""

    def __init__(self, domains: str | Path | Domains, settings: Settings, *, resume: bool = False,
                 show_progress: bool = True) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.folder = Path(settings.output) if settings.output else new_run_folder("train")
        self.run = RunFolder(self.folder)
        if not resume and (self.run.state_file.is_file() or (self.folder / DOMAINS_FILE).is_file()):
            raise SparsefitError("the run folder already holds a run", file=self.folder,
                                 hint=f"resume it with --resume {self.folder}, or pick another --output")
        self.spec = domains if isinstance(domains, Domains) else load_domains(domains)
        if len(self.spec.domains) < 2:
            raise SparsefitError("a multi-domain run needs at least two domains",
                                 hint="add a second domain to the domains file, or train on one catalog with `sparsefit train CATALOG`")
        make_folder(self.folder)
        save_settings(settings, self.run.config)
        write_json(self.folder / DOMAINS_FILE, self.spec.as_dict())  # first, so that a run killed later can resume
        self.state = RunState(self.folder)
        self.show_progress = show_progress
        self.timings: dict[str, float] = read_optional(self.run.timings)
        self._loaded: tuple[int | str, Encoder] | None = None
        self.domains = [DomainTrainer(self, d, self._domain_settings(d), resume=resume, show_progress=show_progress)
                        for d in self.spec.domains]

    def _domain_settings(self, domain: Domain) -> Settings:
        update = {**domain.settings, "output": self.folder / "domains" / domain.name}
        if self.settings.qdrant_url:  # a server collection per domain
            update["collection"] = f"{self.settings.collection}-{domain.name}"
        return self.settings.model_copy(update=update)

    # -- the stages ---------------------------------------------------------------------------
    def fit(self) -> Path:
        """Every domain's baselines, then every round (mine per domain, train on all, evaluate per domain)."""
        for domain in self.domains:
            domain.baselines()
        for trained in [n for n in range(self.settings.rounds) if self.state.done(RunFolder.train_stage(n))]:
            try:  # a resumed run checks that its finished rounds' checkpoints still load
                self.encoder_after(trained)
            except DamagedCheckpoint as damaged:
                self._redo_from(damaged.round, damaged.reason)
                break
        round_no = 0
        while round_no < self.settings.rounds:
            try:
                self._round(round_no)
                round_no += 1
            except DamagedCheckpoint as damaged:
                self._redo_from(damaged.round, damaged.reason)
                round_no = damaged.round
        if exports_average(self.settings):
            self._average()
        for domain in self.domains:
            domain._hybrid_stage()
        return self.folder

    def _round(self, n: int) -> None:
        if not self.state.done(RunFolder.train_stage(n)):
            parts = [domain._rows(n) for domain in self.domains]  # each domain mines its own index
            empty = [d.domain.name for d, rows in zip(self.domains, parts) if not rows]
            if empty:
                raise SparsefitError(f"domain(s) {', '.join(empty)} have no training rows in round {n}",
                                     hint="check their judgments and positive thresholds, or leave them out")
            sizes = [len(rows) for rows in parts]
            probabilities = domain_probabilities(sizes, [d.weight for d in self.spec.domains], self.spec.temperature)
            mix = DomainMix(tuple(sizes), tuple(probabilities))
            encoder = self._load_base() if n == 0 else self.encoder_after(n - 1)
            self._loaded = None  # trained in place below: the cached model is no longer round n-1's
            started = time.perf_counter()
            stats = train_rows(encoder, [row for rows in parts for row in rows], n, self.settings, self.device, self.run,
                               show_progress=self.show_progress, mix=mix)
            encoder.save(RunFolder.stage_model(self.run.round(n)))
            batch = min(self.settings.train_batch_size, sum(sizes))
            write_json(self.run.training(n), {
                **stats.__dict__, "temperature": self.spec.temperature, "steps_per_epoch": mix.steps_per_epoch(batch),
                "domains": {d.name: {"rows": size, "probability": round(p, 6), "weight": d.weight}
                            for d, size, p in zip(self.spec.domains, sizes, probabilities)},
            })
            self._time(f"round {n} train", started)
            self.state.mark(RunFolder.train_stage(n))
        for domain in self.domains:
            if not domain.state.done(RunFolder.evaluate_stage(n)):
                domain._index_and_evaluate(self.encoder_after(n), domain.run.round(n), f"round {n}")
                domain.state.mark(RunFolder.evaluate_stage(n))

    def _average(self) -> None:
        """The rounds' weight average, saved once in the run and evaluated on every domain."""
        folder = RunFolder.stage_model(self.run.average)
        name = f"average of rounds 0–{self.settings.rounds - 1}"
        if self.state.done(AVERAGE_MADE):
            try:
                self._load("average", folder)
            except Exception:  # a damaged average: make it again (the rounds are fine: they were just checked)
                self._forget(lambda s: s in (RunFolder.EXPORT, RunFolder.HYBRID, AVERAGE_MADE) or s.startswith(RunFolder.AVERAGE))
        if not self.state.done(AVERAGE_MADE):
            started = time.perf_counter()
            rounds = [RunFolder.stage_model(self.run.round(n)) for n in range(self.settings.rounds)]
            average_encoders(rounds, max_seq_length=self.settings.max_seq_length, name=name).to(self.device).save(folder)
            self._time("average", started)
            self.state.mark(AVERAGE_MADE)
        for domain in self.domains:
            if not domain.state.done(RunFolder.AVERAGE_EVALUATED):
                domain._index_and_evaluate(self._load("average", folder), domain.run.average, name)
                domain.state.mark(RunFolder.AVERAGE_EVALUATED)

    def _redo_from(self, round_no: int, reason: str) -> None:
        from sparsefit.progress import console

        self._forget(lambda s: (s in (RunFolder.EXPORT, RunFolder.HYBRID, AVERAGE_MADE) or s.startswith(RunFolder.AVERAGE)
                                or (RunFolder.stage_round(s) is not None and RunFolder.stage_round(s) >= round_no)))
        console.print(f"[yellow]The checkpoint of round {round_no} is damaged ({reason}); training round {round_no} "
                      "again (rounds before it are kept).[/]")

    def _forget(self, later) -> None:
        """Forget the stages ``later`` picks, in the run's state and every domain's."""
        self.state.forget([s for s in self.state.stages if later(s)])
        for domain in self.domains:
            domain.state.forget([s for s in domain.state.stages if later(s)])
        self._loaded = None

    def export(self) -> Path:
        """The final model to ``model/``; every domain exported as a servable run; the run's report and card."""
        target = self.run.model
        if not (self.state.done(RunFolder.EXPORT) and target.is_dir()):
            with atomic_folder(target) as temporary:
                shutil.copytree(self.final_model_folder(), temporary, dirs_exist_ok=True)
        for domain in self.domains:
            domain.export()
        reports = self.reports()
        write_json(self.folder / "report.json", {
            "domains": {name: report.summary() for name, report in reports.items()},
            "macro_average": macro_average(reports),
        })
        write_atomic(self.run.card, self.card(reports))
        self.state.mark(RunFolder.EXPORT)
        return target

    # -- models -------------------------------------------------------------------------------
    def encoder_after(self, n: int) -> Encoder:
        """Round ``n``'s shared model (loaded once, whichever domain asks)."""
        try:
            return self._load(n, RunFolder.stage_model(self.run.round(n)))
        except Exception as exc:  # a checkpoint we wrote that no longer loads is damaged, whatever the error
            raise DamagedCheckpoint(n, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}") from exc

    def final_model_folder(self) -> Path:
        if exports_average(self.settings) and self.state.done(AVERAGE_MADE):
            return RunFolder.stage_model(self.run.average)
        last = max(n for n in range(self.settings.rounds) if self.state.done(RunFolder.train_stage(n)))
        return RunFolder.stage_model(self.run.round(last))

    def _load(self, key: int | str, folder: Path) -> Encoder:
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = (key, load_encoder(str(folder), max_seq_length=self.settings.max_seq_length, device=self.device))
        return self._loaded[1]

    def _load_base(self) -> Encoder:
        return load_encoder(self.settings.base_model, architecture=self.settings.architecture,
                            max_seq_length=self.settings.max_seq_length, device=self.device)

    def _time(self, stage: str, started: float) -> None:
        self.timings[stage] = round(time.perf_counter() - started, 2)
        write_json(self.run.timings, self.timings)

    # -- results ------------------------------------------------------------------------------
    def reports(self) -> dict[str, Report]:
        """Each domain's held-out report (its own test queries), by domain name."""
        return {domain.domain.name: domain.report() for domain in self.domains}

    def macro_table(self, reports: dict[str, Report] | None = None) -> Table:
        reports = reports or self.reports()
        table = Table(title=f"Macro average over {len(reports)} domains (each domain's held-out mean, then their mean)")
        table.add_column("system", style="bold")
        for metric in METRICS:
            table.add_column(metric, justify="right")
        for name, means in macro_average(reports).items():
            table.add_row(name, *(f"{means[m]:.4f}" for m in METRICS))
        return table

    def card(self, reports: dict[str, Report]) -> str:
        """The run's README.md: the recipe, each domain's table (from its own card) and the macro average."""
        s = self.settings
        lines = [f"# sparsefit model: {s.base_model} fine-tuned on {len(reports)} catalogs", "",
                 f"- Domains: {', '.join(reports)}; batches sampled with temperature {self.spec.temperature:g} "
                 "(each batch from one domain).", f"- {s.rounds} rounds; exported: "
                 + ("the weight average of every round's model." if exports_average(s) else "the last round's model."),
                 "- Each domain's run folder (`domains/<name>/`) has its index, report and card.", "",
                 "## Macro average", "", "| system | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        for name, means in macro_average(reports).items():
            lines.append(f"| {name} | " + " | ".join(f"{means[m]:.4f}" for m in METRICS) + " |")
        for domain in self.domains:
            own = domain.run.card.read_text(encoding="utf-8") if domain.run.card.is_file() else ""
            lines += ["", f"## Domain: {domain.domain.name}", "", *own.splitlines()[1:]]
        return "\n".join(lines) + "\n"


def macro_average(reports: dict[str, Report]) -> dict[str, dict[str, float]]:
    """The mean over domains of each system's held-out metrics, for the systems every domain has.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> one = NS(systems=[NS(name="bm25", mean={"ndcg@10": 0.2})]); two = NS(systems=[NS(name="bm25", mean={"ndcg@10": 0.4})])
        >>> round(macro_average({"a": one, "b": two})["bm25"]["ndcg@10"], 3)
        0.3
    """
    names = [s.name for s in next(iter(reports.values())).systems]
    shared = [n for n in names if all(any(s.name == n for s in r.systems) for r in reports.values())]
    out = {}
    for name in shared:
        means = [next(s.mean for s in r.systems if s.name == name) for r in reports.values()]
        out[name] = {m: sum(x[m] for x in means) / len(means) for m in means[0]}
    return out


def finetune_domains(domains: str | Path | Domains, settings: Settings | None = None, *, resume: bool = False,
                     show_progress: bool = True, **overrides) -> Path:
    """Fine-tune one model on every catalog of ``domains`` (a domains file); returns the run folder.

    Example:
        >>> run = finetune_domains("domains.yaml", rounds=2, output="runs/multi")   # doctest: +SKIP
        >>> (run / "model").is_dir(), sorted(p.name for p in (run / "domains").iterdir())   # doctest: +SKIP
        (True, ['cranfield', 'homedepot'])
    """
    from sparsefit.config import load_settings

    trainer = MultiDomainTrainer(domains, settings or load_settings(**overrides), resume=resume, show_progress=show_progress)
    trainer.fit()
    trainer.export()
    return trainer.folder


def resume_multi_domain(folder: str | Path, *, show_progress: bool = True, device: str | None = None) -> MultiDomainTrainer:
    """The multi-domain trainer of an existing run, with its domains and settings."""
    from sparsefit.config import load_settings
    from sparsefit.pipeline.resume import refuse_changed_settings

    folder = Path(folder)
    run = RunFolder(folder)
    settings = load_settings(run.config, output=folder)
    refuse_changed_settings(settings, run.config)
    if device is not None:
        settings = settings.model_copy(update={"device": device})
    return MultiDomainTrainer(Domains.from_dict(read_json(folder / DOMAINS_FILE)), settings, resume=True,
                              show_progress=show_progress)
