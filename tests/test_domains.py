"""Multi-domain training: the domains file, the sampler (one domain per batch, temperature-weighted turns),
and a two-catalog run with per-domain folders, mining in each query's own domain, the macro average and resume."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset

from sparsefit.config import load_settings
from sparsefit.data.domains import load_domains
from sparsefit.domain_batches import DomainMix, domain_probabilities
from sparsefit.errors import SparsefitError
from tests.conftest import EXAMPLES
from tests.helpers import cli_process

TOPICS = ["turbine blade", "wing flutter", "nozzle flow", "shock wave", "heat transfer", "boundary layer"]
DETAILS = ["cooling", "vibration", "pressure", "stability", "noise", "drag", "fatigue", "icing", "erosion", "control"]


def write_docs_domain(folder: Path) -> tuple[Path, Path]:
    """A second, non-shop domain: 60 engineering abstracts and 60 queries, each judged against its own abstract."""
    folder.mkdir(parents=True, exist_ok=True)
    docs, judged = folder / "docs.csv", folder / "docs_judged.csv"
    with docs.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["doc_id", "text"])
        for t, topic in enumerate(TOPICS):
            for d, detail in enumerate(DETAILS):
                writer.writerow([f"D{t}{d}", f"experiments on {topic} {detail} in a supersonic tunnel, case {t}{d}"])
    with judged.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["query", "doc_id", "relevance"])
        for t, topic in enumerate(TOPICS):
            for d, detail in enumerate(DETAILS):
                writer.writerow([f"{topic} {detail}", f"D{t}{d}", 2])
                writer.writerow([f"{topic} {detail}", f"D{t}{(d + 1) % len(DETAILS)}", 1])
    return docs, judged


def write_domains_file(folder: Path, text: str) -> Path:
    path = folder / "domains.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the domains file -------------------------------------------------------------------------------
def test_a_domains_file_resolves_paths_from_its_folder_and_keeps_data_options(tmp_path):
    write_docs_domain(tmp_path / "data")
    path = write_domains_file(tmp_path, f"""
temperature: 3
domains:
  - {{name: shop, catalog: {EXAMPLES / 'catalog.csv'}, judgments: {EXAMPLES / 'judged_queries.csv'}}}
  - {{name: docs, catalog: data/docs.csv, judgments: data/docs_judged.csv, text_fields: [text], weight: 2}}
""")
    spec = load_domains(path)
    assert spec.temperature == 3.0
    shop, docs = spec.domains
    assert docs.catalog == (tmp_path / "data" / "docs.csv").resolve() and docs.weight == 2.0
    assert docs.settings == {"text_fields": ["text"]} and shop.settings == {}


@pytest.mark.parametrize("text, expected", [
    ("domains: []", "needs a non-empty `domains:` list"),
    ("domains:\n  - {catalog: c.csv}", "domain 1 has no `name`"),
    ("domains:\n  - {name: a, catalog: missing.csv}", "domain 'a''s catalog"),
    ("rounds: 3\ndomains:\n  - {name: a, catalog: c.csv}", "unknown top-level key(s) rounds"),
    ("domains:\n  - {name: a, catalog: c.csv, learning_rate: 1}", "unknown key(s) learning_rate"),
    ("domains:\n  - {name: a, catalog: c.csv, weight: 0}", "weight must be a number above 0"),
    ("domains:\n  - {name: a, catalog: c.csv, test_fraction: 3}", "test_fraction is invalid"),
    ("domains:\n  - {name: a, catalog: c.csv}\n  - {name: a, catalog: c.csv}", "two domains are named 'a'"),
    ("domains:\n  - {name: ../up, catalog: c.csv}", "is not a folder name"),
    ("temperature: 0\ndomains:\n  - {name: a, catalog: c.csv}", "temperature must be a number above 0"),
    ("domains: [unclosed", "cannot be read as YAML"),
])
def test_a_bad_domains_file_is_one_clear_error_naming_the_file(tmp_path, text, expected):
    (tmp_path / "c.csv").write_text("id,title\n1,drill\n", encoding="utf-8")
    path = write_domains_file(tmp_path, text)
    with pytest.raises(SparsefitError) as error:
        load_domains(path)
    assert expected in str(error.value) and str(path) in str(error.value)


def test_the_cli_refuses_a_catalog_beside_domains_with_exit_2(tmp_path):
    path = write_domains_file(tmp_path, "domains: []")
    result = cli_process("train", str(EXAMPLES / "catalog.csv"), "--domains", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--domains names every catalog" in result.stderr
    result = cli_process("train", "--domains", str(path), "--output", str(tmp_path / "run"))
    assert result.returncode == 2 and "needs a non-empty `domains:` list" in result.stderr


# -- the sampler --------------------------------------------------------------------------------------
def test_temperature_probabilities_match_their_definition():
    # sizes 900 and 100: proportional 0.9/0.1; square root 30:10; weights multiply the sized share
    assert domain_probabilities([900, 100], temperature=1) == pytest.approx([0.9, 0.1])
    assert domain_probabilities([900, 100]) == pytest.approx([0.75, 0.25])
    assert domain_probabilities([900, 100], [1, 3], temperature=1) == pytest.approx([0.75, 0.25])
    assert domain_probabilities([900, 100], temperature=1000) == pytest.approx([0.5, 0.5], abs=0.002)
    with pytest.raises(SparsefitError, match="temperature must be above 0"):
        domain_probabilities([1, 2], temperature=0)


def _two_domain_dataset(big: int, small: int) -> Dataset:
    queries = [f"shop query {i % (big // 2)}" for i in range(big)] + [f"docs query {i}" for i in range(small)]
    positives = [f"product {i}" for i in range(big)] + [f"abstract {i}" for i in range(small)]
    return Dataset.from_dict({"query": queries, "positive": positives})


def test_every_batch_comes_from_one_domain_without_repeated_texts():
    big, small, batch = 300, 30, 8
    dataset = _two_domain_dataset(big, small)
    mix = DomainMix((big, small), tuple(domain_probabilities([big, small])))
    sampler = mix.sampler()(dataset, batch_size=batch, drop_last=False, seed=5)
    batches = list(sampler)
    # p = sqrt(300)/(sqrt(300)+sqrt(30)) = 0.7597; 38 batches of the big domain / 0.7597 = 50.02 -> 51 per epoch
    assert len(batches) == len(sampler) == 51
    for rows in batches:
        domains = {row < big for row in rows}
        assert len(domains) == 1, rows  # one domain per batch
        assert len(rows) == batch
        texts = [dataset[row]["query"] for row in rows] + [dataset[row]["positive"] for row in rows]
        assert len(texts) == len(set(texts))  # the big domain repeats each query twice: never in one batch


def test_domains_take_turns_by_their_probabilities():
    big, small = 900, 100
    dataset = _two_domain_dataset(big, small)
    mix = DomainMix((big, small), (0.75, 0.25))
    sampler = mix.sampler()(dataset, batch_size=10, drop_last=False, seed=1)
    counts = Counter()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        counts.update(rows[0] < big for rows in sampler)
    total = counts[True] + counts[False]
    assert total == 20 * 120  # 90 batches of the big domain / 0.75
    share = counts[False] / total
    assert abs(share - 0.25) < 4 * math.sqrt(0.25 * 0.75 / total)  # within four standard errors
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first  # reproducible per epoch


def test_a_domain_with_few_distinct_texts_gives_short_batches_and_the_epoch_ends():
    # 200 rows of 10 queries: a batch holds at most 10 rows; the epoch still ends and uses most rows
    dataset = Dataset.from_dict({"query": [f"q{i % 10}" for i in range(200)], "positive": [f"p{i}" for i in range(200)]})
    sampler = DomainMix((200,), (1.0,)).sampler()(dataset, batch_size=32, drop_last=False, seed=3)
    batches = list(sampler)
    assert len(batches) == 7  # ceil(200 / 32) batches of the only domain
    assert all(0 < len(rows) <= 10 for rows in batches)
    assert all(len({dataset[r]["query"] for r in rows}) == len(rows) for rows in batches)


def test_a_small_weight_does_not_stretch_the_epoch():
    # sizes 10,000 and 100, weights 1 and 0.01: p = 100 / 100.1 for the big one; 157 of its batches / p -> 158
    probabilities = domain_probabilities([10_000, 100], [1, 0.01])
    assert DomainMix((10_000, 100), tuple(probabilities)).steps_per_epoch(64) == 158


# -- a two-catalog run ------------------------------------------------------------------------------
@pytest.fixture
def two_domains(tmp_path):
    write_docs_domain(tmp_path / "data")
    return write_domains_file(tmp_path, f"""
domains:
  - {{name: shop, catalog: {EXAMPLES / 'catalog.csv'}, judgments: {EXAMPLES / 'judged_queries.csv'}}}
  - {{name: docs, catalog: data/docs.csv, judgments: data/docs_judged.csv, text_fields: [text], test_fraction: 0.25}}
""")


@pytest.mark.slow  # trains twice on a tiny BERT (about a minute)
def test_a_two_domain_run_keeps_domains_apart_and_resumes(tiny_model, two_domains, tmp_path, monkeypatch):
    import sparsefit.domain_batches as batches
    import sparsefit.pipeline.domains as domains_module  # train_rows is looked up there
    from sparsefit.pipeline import MultiDomainTrainer, resume_multi_domain

    seen: list[list[int]] = []
    real_batch = batches.DomainBatchSampler._batch

    def recording(self, queue, start, size, rng):
        rows = real_batch(self, queue, start, size, rng)
        seen.append([start <= r < start + size for r in rows])
        return rows

    monkeypatch.setattr(batches.DomainBatchSampler, "_batch", recording)
    real_train = domains_module.train_rows

    def stop_in_round_1(encoder, rows, n, *args, **kwargs):
        if n == 1:
            raise KeyboardInterrupt
        return real_train(encoder, rows, n, *args, **kwargs)

    monkeypatch.setattr(domains_module, "train_rows", stop_in_round_1)
    run = tmp_path / "run"
    settings = load_settings(base_model=str(tiny_model), rounds=2, train_batch_size=16, learning_rate=1e-3, negatives=2,
                             output=run)
    with pytest.raises(KeyboardInterrupt):
        MultiDomainTrainer(two_domains, settings, show_progress=False).fit()
    assert seen and all(all(rows) for rows in seen)  # every training batch from one domain
    round0 = (run / "rounds/0/training.json").read_bytes()
    state = json.loads((run / "state.json").read_text())["done"]
    assert "round-0/train" in state and "round-1/train" not in state

    monkeypatch.setattr(domains_module, "train_rows", real_train)
    trainer = resume_multi_domain(run, show_progress=False)
    trainer.fit()
    trainer.export()
    assert (run / "rounds/0/training.json").read_bytes() == round0  # round 0 was not trained again
    training = json.loads((run / "rounds/1/training.json").read_text())
    assert set(training["domains"]) == {"shop", "docs"}
    sizes = {name: d["rows"] for name, d in training["domains"].items()}
    total = math.sqrt(sizes["shop"]) + math.sqrt(sizes["docs"])
    assert training["domains"]["docs"]["probability"] == pytest.approx(math.sqrt(sizes["docs"]) / total, abs=1e-5)

    # each domain: its own split, baselines and rounds; mined negatives from its own catalog only
    docs_ids = {row["doc_id"] for row in csv.DictReader((tmp_path / "data/docs.csv").open(encoding="utf-8"))}
    shop_ids = {row["sku"] for row in csv.DictReader((EXAMPLES / "catalog.csv").open(encoding="utf-8"))}
    for name, ids in (("docs", docs_ids), ("shop", shop_ids)):
        folder = run / "domains" / name
        negatives = json.loads((folder / "rounds/1/negatives.json").read_text())["negatives"]
        mined = {pid for lists in negatives.values() for row in lists for pid in row}
        assert mined and mined <= ids
        assert (folder / "model").is_dir() and (folder / "report.json").is_file()
        split = json.loads((folder / "split.json").read_text())
        assert split["test"] and not set(split["test"]) & set(split["train"])
    docs_test = json.loads((run / "domains/docs/split.json").read_text())["test"]
    assert len(docs_test) == 15  # the domain's own test_fraction (0.25 of 60 queries)

    report = json.loads((run / "report.json").read_text())
    assert set(report["domains"]) == {"shop", "docs"}
    shop, docs = ({s["name"]: s["metrics"] for s in json.loads((run / "domains" / name / "report.json").read_text())["systems"]}
                  for name in ("shop", "docs"))
    for system in ("bm25", "round 0", "round 1", "average of rounds 0–1"):
        want = (shop[system]["ndcg@10"] + docs[system]["ndcg@10"]) / 2
        assert report["macro_average"][system]["ndcg@10"] == pytest.approx(want, abs=1e-9)
    card = (run / "README.md").read_text()
    assert "## Domain: shop" in card and "## Domain: docs" in card and "## Macro average" in card
    # the shared model serves each domain's run folder
    result = cli_process("search", str(run / "domains/docs"), "turbine blade cooling", "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = [hit["product_id"] for hit in json.loads(result.stdout)["hits"]]
    assert len(hits) == 3 and set(hits) <= docs_ids  # the docs domain's own index
    with pytest.raises(SparsefitError, match="already holds a run"):  # the same command again, without --resume
        MultiDomainTrainer(two_domains, settings, show_progress=False)
    from sparsefit.pipeline import resume_trainer

    with pytest.raises(SparsefitError, match="one domain of a multi-domain run"):
        resume_trainer(run / "domains" / "docs", show_progress=False)
    result = cli_process("search", str(run), "drill")  # the run itself has no one index: a clear pointer to its domains
    assert result.returncode == 2 and "one index per domain" in result.stderr and "<docs|shop>" in result.stderr
