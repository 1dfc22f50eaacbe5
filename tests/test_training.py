"""Training and mining on a tiny BERT built in the test session: behaviour, not retrieval quality."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from sparsefit.config import load_settings
from sparsefit.errors import SparsefitError
from sparsefit.data import load_catalog, load_judgments
from sparsefit.index import IndexLocation
from sparsefit.indexing import build_index
from sparsefit.mining import MiningOptions, mine_negatives
from sparsefit.models import load_encoder
from sparsefit.pipeline import Trainer, finetune, resume_trainer
from sparsefit.devices import training_precision
from sparsefit.training import TrainingOptions, steps_for, train_round
from tests.conftest import EXAMPLES
from tests.helpers import CLI, cli_process


@pytest.fixture(scope="module")
def demo():
    catalog = load_catalog(EXAMPLES / "catalog.csv")
    return catalog, load_judgments(EXAMPLES / "judged_queries.csv", catalog)


@pytest.fixture(scope="module")
def mined_setup(demo, tiny_model, tmp_path_factory):
    catalog, judgments = demo
    encoder = load_encoder(str(tiny_model))
    index, vectors = build_index(encoder, catalog, IndexLocation(path=tmp_path_factory.mktemp("idx") / "index"), show_progress=False)
    positives, excluded = {}, {}
    for key, pid, gain in zip(judgments.query_keys, judgments.product_ids, judgments.gains.tolist()):
        if gain >= 1.0:
            positives.setdefault(key, []).append(pid)
        if gain > 0:
            excluded.setdefault(key, []).append(pid)
    queries = {k: judgments.query_text(k) for k in positives}
    yield encoder, index, vectors, queries, positives, excluded
    index.close()


@pytest.mark.parametrize("strategy", ["top", "mixed", "random"])
def test_mined_negatives_never_include_positives_and_rows_are_equal(demo, mined_setup, strategy):
    catalog, _ = demo
    encoder, index, vectors, queries, positives, excluded = mined_setup
    negatives, stats = mine_negatives(encoder, index, queries, positives, excluded, vectors, catalog,
                                      MiningOptions(negatives=3, top_k=20, strategy=strategy, seed=1))
    assert stats.returned_positives == 0
    assert stats.rows == sum(len(v) for v in positives.values()) == sum(len(v) for v in negatives.values())
    for key, rows in negatives.items():
        banned = set(excluded.get(key, ())) | set(positives[key])
        assert len(rows) == len(positives[key])
        for row in rows:
            assert len(row) == 3 and len(set(row)) == 3
            assert not banned & set(row)
            assert all(pid in catalog for pid in row)
    assert stats.negatives == 3 * stats.rows


def test_mixed_sampling_takes_half_its_negatives_from_the_top_even_with_one_per_row():
    from sparsefit.mining import _sample

    kept = [f"P{i}" for i in range(50)]  # candidates, hardest first
    rng = np.random.default_rng(3)
    pairs = [_sample(kept, 2, "mixed", rng) for _ in range(200)]
    assert all(row[0] == "P0" and row[1] != "P0" for row in pairs)  # 2 per row: the hardest and one further down
    singles = [_sample(kept, 1, "mixed", rng)[0] for _ in range(400)]
    assert 150 < singles.count("P0") < 250  # 1 per row: the hardest in about half the rows, not in all
    assert len(set(singles) - {"P0"}) > 30  # the others spread over the rest of the list
    assert [_sample(kept, 1, "top", rng) for _ in range(3)] == [["P0"]] * 3


def test_too_few_candidates_are_padded_and_counted(demo, mined_setup):
    catalog, _ = demo
    encoder, index, vectors, queries, positives, excluded = mined_setup
    # A false-negative fraction near 0 drops every candidate: all negatives come from random padding.
    negatives, stats = mine_negatives(encoder, index, queries, positives, excluded, vectors, catalog,
                                      MiningOptions(negatives=2, top_k=5, false_negative_fraction=1e-9, seed=2))
    assert stats.padded == 2 * stats.rows and stats.padded_rows == stats.rows
    assert stats.dropped_false_negatives > 0
    for key, rows in negatives.items():
        assert all(len(row) == 2 and not set(row) & (set(excluded.get(key, ())) | set(positives[key])) for row in rows)


def test_mining_is_deterministic_by_seed(demo, mined_setup):
    catalog, _ = demo
    args = (*mined_setup[:1], *mined_setup[1:2], mined_setup[3], mined_setup[4], mined_setup[5], mined_setup[2], catalog)
    first, _ = mine_negatives(*args, MiningOptions(negatives=2, strategy="random", seed=5))
    again, _ = mine_negatives(*args, MiningOptions(negatives=2, strategy="random", seed=5))
    other, _ = mine_negatives(*args, MiningOptions(negatives=2, strategy="random", seed=6))
    assert first == again and first != other


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_training_round_changes_the_model_and_it_reloads(tiny_model, tmp_path, precision):
    encoder = load_encoder(str(tiny_model))
    before = encoder.fingerprint()
    rows = [{"query": f"query {i}", "positive": f"product number {i}", "negative_1": f"other thing {i}"} for i in range(12)]
    stats = train_round(encoder, rows, TrainingOptions(batch_size=4, learning_rate=1e-3, precision=precision), tmp_path / "work")
    assert stats.steps == 3 and stats.negatives_per_row == 1 and stats.precision == precision
    assert stats.losses and all(math.isfinite(entry["loss"]) for entry in stats.losses)
    assert all(p.dtype == torch.float32 for p in encoder.model.parameters())  # autocast: the weights stay float32
    assert encoder.fingerprint() != before
    encoder.save(tmp_path / "model")
    again = load_encoder(str(tmp_path / "model"))
    assert again.fingerprint() == encoder.fingerprint()
    np.testing.assert_allclose(again.encode_queries(["query 3"]).toarray(), encoder.encode_queries(["query 3"]).toarray(), atol=1e-6)


def _settings(tiny_model, out, **extra):
    options = dict(base_model=str(tiny_model), rounds=2, train_batch_size=16, learning_rate=1e-3, negatives=2, output=out)
    return load_settings(**{**options, **extra})


@pytest.mark.slow  # trains with finetune/Trainer.fit
def test_finetune_writes_the_run_and_the_model_searches(tiny_model, tmp_path, monkeypatch):
    import sparsefit.evaluation.hybrid as hybrid

    fitted_on: list[set[str]] = []  # the queries every fusion fit searched with

    def spy(encoder, index, validation, **kw):
        fitted_on.append(set(validation.keys()))
        return real_fit(encoder, index, validation, **kw)

    real_fit = hybrid.fit_fusion
    monkeypatch.setattr(hybrid, "fit_fusion", spy)
    run = finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", _settings(tiny_model, tmp_path / "run", mining_epochs=0.5),
                   show_progress=False)
    for name in ("config.yaml", "split.json", "state.json", "report.json", "README.md", "model/modules.json",
                 "rounds/0/model/modules.json", "rounds/1/negatives.json", "rounds/1/mining.json", "rounds/1/metrics.json"):
        assert (run / name).exists(), name
    report = json.loads((run / "report.json").read_text())
    assert [s["name"] for s in report["systems"]] == ["bm25", "bm25 (Qdrant)", f"base ({tiny_model})", "hybrid (base)", "round 0",
                                                      "round 1", "average of rounds 0–1", "hybrid (tuned)"]
    assert report["reference"] == "hybrid (base)"
    assert {s["name"]: s["paired_test_vs_reference"] is None for s in report["systems"]}["hybrid (base)"]
    # The exported model is the rounds' weight average, and the run's index is built with it.
    exported, rounds = load_encoder(str(run / "model")), [load_encoder(str(run / f"rounds/{n}/model")) for n in (0, 1)]
    assert exported.fingerprint() == load_encoder(str(run / "average/model")).fingerprint()
    for key, weight in exported.model.state_dict().items():
        if weight.is_floating_point():
            expected = (rounds[0].model.state_dict()[key] + rounds[1].model.state_dict()[key]) / 2
            np.testing.assert_allclose(weight.numpy(), expected.numpy(), atol=1e-6, err_msg=key)
    assert exported.fingerprint() not in {r.fingerprint() for r in rounds}
    assert "weight average of every round's model" in (run / "README.md").read_text()
    mining = json.loads((run / "rounds/1/mining.json").read_text())
    assert mining["returned_positives"] == 0 and mining["negatives_per_row"] == 2
    # ESCI: Exact products are the positives in every round, and each round records its threshold.
    trained = [json.loads((run / f"rounds/{n}/training.json").read_text()) for n in (0, 1)]
    assert [t["positive_min_gain"] for t in trained] == [1.0, 1.0]
    # Where and how each round trained: this machine has no GPU, so the CPU with the fast kernels, one process.
    assert [(t["device"], t["path"], t["processes"], t["precision"]) for t in trained] == [("cpu", "fast", 1, "float32")] * 2
    # Round 0 takes one epoch over its rows, the mining round half an epoch (--mining-epochs 0.5).
    assert [t["steps"] for t in trained] == [steps_for(t["rows"], 16, epochs) for t, epochs in zip(trained, (1.0, 0.5))]
    assert trained[1]["steps"] < trained[1]["rows"] / 16
    split = json.loads((run / "split.json").read_text())
    negatives = json.loads((run / "rounds/1/negatives.json").read_text())["negatives"]
    assert not set(negatives) & set(split["test"])  # no test query is trained on
    # Fusion weights are fitted on the validation queries only: training queries kept out of training, no test query.
    validation = set(json.loads((run / "validation.json").read_text())["queries"])
    assert 5 <= len(validation) <= len(split["train"]) // 10  # a tenth of the evaluable training queries at most
    assert fitted_on == [validation, validation]  # the base model's hybrid, then the tuned model's
    assert not validation & set(split["test"]) and not validation & set(negatives)
    fusion = json.loads((run / "fusion.json").read_text())
    assert set(fusion) == {"base", "tuned"} and fusion["tuned"]["fitted"]["queries"] == len(validation)
    # The exported model loads in plain sentence-transformers and searches the run's index.
    from sentence_transformers import SparseEncoder

    SparseEncoder(str(run / "model"), device="cpu")
    result = cli_process("search", run, "cordless drill", "--limit", "3", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("│ ") >= 3


@pytest.mark.slow  # trains with finetune/Trainer.fit
def test_export_last_keeps_the_last_rounds_model(tiny_model, tmp_path):
    run = finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv",
                   _settings(tiny_model, tmp_path / "run", export_model="last"), show_progress=False)
    assert not (run / "average").exists()
    assert load_encoder(str(run / "model")).fingerprint() == load_encoder(str(run / "rounds/1/model")).fingerprint()
    # Another model in model/ would search the index with mismatched vectors: refused, by the CLI and the service.
    import shutil

    from sparsefit.errors import SparsefitError
    from sparsefit.serving.service import SearchService

    shutil.rmtree(run / "model")
    shutil.copytree(run / "rounds/0/model", run / "model")
    result = cli_process("search", run, "cordless drill", timeout=120)
    assert result.returncode == 2 and "built with another model" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(SparsefitError, match="built with another model"):
        SearchService.open(run, calibrate=False)


def test_averaging_a_model_with_itself_changes_nothing_and_other_architectures_are_refused(tiny_model, splade_tiny, tmp_path):
    from sparsefit.errors import SparsefitError
    from sparsefit.models import average_encoders

    encoder = load_encoder(str(tiny_model))
    encoder.save(tmp_path / "a")
    soup = average_encoders([tmp_path / "a", tmp_path / "a", tmp_path / "a"], name="soup")
    assert soup.name == "soup"
    np.testing.assert_allclose(soup.encode_documents(["cordless drill"]).toarray(),
                               encoder.encode_documents(["cordless drill"]).toarray(), atol=1e-6)
    splade_tiny.save(tmp_path / "b")
    with pytest.raises(SparsefitError, match="different architectures"):
        average_encoders([tmp_path / "a", tmp_path / "b"])


def test_a_second_train_into_the_same_folder_is_refused(tiny_model, tmp_path):
    from sparsefit.errors import SparsefitError

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text('{"done": []}')
    with pytest.raises(SparsefitError, match="--resume"):
        Trainer(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", _settings(tiny_model, tmp_path / "run"))


def _final_metrics(run) -> list:
    return [(s["name"], s["metrics"]) for s in json.loads((run / "report.json").read_text())["systems"]]


@pytest.mark.slow  # trains with finetune/Trainer.fit
def test_resume_after_sigkill_continues_from_the_last_finished_stage(tiny_model, tmp_path):
    reference = finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", _settings(tiny_model, tmp_path / "ref"),
                         show_progress=False)
    run = tmp_path / "killed"
    command = [*CLI, "train", str(EXAMPLES / "catalog.csv"), "--judgments",
               str(EXAMPLES / "judged_queries.csv"), "--base-model", str(tiny_model), "--rounds", "2",
               "--train-batch-size", "16", "--learning-rate", "1e-3", "--negatives", "2", "--output", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill -9 as soon as round 0 is trained
        state = run / "state.json"
        if state.is_file() and "round-0/train" in state.read_text():
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = json.loads((run / "state.json").read_text())["done"]
    assert "round-0/train" in done and "export" not in done
    trainer = resume_trainer(run, show_progress=False)
    assert trainer.state.done("round-0/train")
    trainer.fit()
    trainer.export()
    got, want = _final_metrics(run), _final_metrics(reference)
    assert [n for n, _ in got] == [n for n, _ in want]
    for (name, a), (_, b) in zip(got, want):
        if not name.startswith("hybrid"):  # a hybrid's legs rank tied products in Qdrant's order, which can differ
            assert a == pytest.approx(b, abs=1e-6)  # from one process to the next (docs/how-it-works.md)


def test_inference_free_trains_its_static_query_weights_with_their_own_rate(tiny_model, tmp_path):
    encoder = load_encoder(str(tiny_model), architecture="inference-free")
    static = next(m for m in encoder.model.modules() if type(m).__name__ == "SparseStaticEmbedding")
    before_static = static.weight.detach().clone()
    before_query = encoder.encode_queries(["cordless drill"])
    rows = [{"query": f"cordless drill {i}", "positive": f"drill driver kit {i}"} for i in range(16)]
    train_round(encoder, rows, TrainingOptions(batch_size=4, learning_rate=1e-4, static_learning_rate=0.5), tmp_path)
    assert not np.allclose(static.weight.detach().numpy(), before_static.numpy())
    after_query = encoder.encode_queries(["cordless drill"])
    assert sorted(after_query.indices) == sorted(before_query.indices)  # still only the query's own tokens
    assert not np.allclose(after_query.data, before_query.data)


@pytest.mark.slow  # trains with finetune/Trainer.fit
def test_training_without_judgments_uses_generated_queries_and_evaluates_on_the_real_ones(tiny_model, tmp_path):
    settings = _settings(tiny_model, tmp_path / "run", rounds=1, test_judgments=EXAMPLES / "judged_queries.csv",
                         query_products=120)
    trainer = Trainer(EXAMPLES / "catalog.csv", None, settings, show_progress=False)
    info = json.loads((trainer.folder / "queries.json").read_text())
    assert info["source"] == "offline" and info["products"] == 120 and info["generated"] == 240
    # Binary generated positives take the test file's top gain (ESCI: 1.0); every real judged query is held out.
    assert trainer.inputs.judgments.scheme.name == "esci"
    assert set(trainer.inputs.split.test) == load_judgments(EXAMPLES / "judged_queries.csv").keys_with_relevant()
    assert not set(trainer.inputs.split.train) & set(trainer.inputs.split.test)
    assert len(trainer._pairs(0)) >= 200
    trainer.fit()
    names = [s.name for s in trainer.report().systems]
    # hybrid weights fitted on generated queries kept out of training: the real (test) queries are never seen
    assert names == ["bm25", "bm25 (Qdrant)", f"base ({tiny_model})", "hybrid (base)", "round 0", "hybrid (tuned)"]
    validation = set(json.loads((trainer.folder / "validation.json").read_text())["queries"])
    assert validation and not validation & set(trainer.inputs.split.test)
    # Resuming reuses the generated queries instead of generating again.
    resumed = resume_trainer(trainer.folder, show_progress=False)
    assert resumed.state.done("queries") and resumed.timings["queries"] == trainer.timings["queries"]


def test_generated_queries_equal_to_test_queries_are_left_out_and_counted(tmp_path):
    from sparsefit.pipeline import load_inputs

    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title\nP1,cordless drill\nP2,garden hose\nP3,door knob\n")
    generated = tmp_path / "queries.jsonl"
    generated.write_text("".join(json.dumps({"query": q, "product_id": p, "label": 1}) + "\n"
                                 for q, p in [("drill", "P1"), ("hose", "P2"), ("Door  Knob", "P3"), ("knob", "P3")]))
    test = tmp_path / "test.csv"
    test.write_text("query,product_id,relevance\ndoor knob,P3,3\ndoor knob,P1,1\n")
    inputs = load_inputs(catalog, generated, load_settings(test_judgments=test), tmp_path)
    assert inputs.judgments.skipped["training query equal to a test query (left out)"] == 1
    assert sorted(inputs.split.train) == ["drill", "hose", "knob"] and inputs.split.test == ["door knob"]
    assert inputs.judgments.qrels()["door knob"] == {"P3": 2.0, "P1": 0.0}  # the test file's own gains
    assert inputs.judgments.qrels()["drill"] == {"P1": 2.0}  # binary positives take the top gain (3 − 1)


def test_auto_precision_is_bfloat16_only_where_the_cpu_does_it_fast(monkeypatch):
    import sparsefit.devices

    def precision(setting, hidden):
        return training_precision(setting, "cpu", hidden_size=hidden)

    for fast, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(sparsefit.devices, "bfloat16_is_fast", lambda fast=fast: fast)
        assert precision("auto", 384) == expected
        assert precision("auto", 128) == "float32"  # small models gain nothing from bfloat16
        assert [precision("float32", 384), precision("bfloat16", 128)] == ["float32", "bfloat16"]


def test_default_training_positives_round_0_all_but_the_lowest_third_mining_rounds_the_top_fifth() -> None:
    from sparsefit.data import detect_scheme
    from sparsefit.pipeline import default_positive_gains

    labels = ["1", "1.33", "1.67", "2", "2.33", "2.67", "3"]
    graded = detect_scheme(labels)
    first, mined = default_positive_gains(graded)
    assert [label for label in labels if graded.gain(label) >= first] == ["1.67", "2", "2.33", "2.67", "3"]
    assert [label for label in labels if graded.gain(label) >= mined] == ["2.67", "3"]
    esci = detect_scheme(["E", "S", "C", "I"])
    assert default_positive_gains(esci) == (esci.relevant_threshold, esci.relevant_threshold) == (esci.gain("E"),) * 2


def test_round_0_and_mining_rounds_take_their_own_positive_gains(tiny_model, tmp_path):
    settings = _settings(tiny_model, tmp_path / "run", rounds=2, positive_min_gain=0.1, mined_positive_min_gain=1.0)
    trainer = Trainer(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", settings, show_progress=False)
    gains = dict(zip(zip(trainer.train.query_keys, trainer.train.product_ids), trainer.train.gains.tolist()))
    first, mined = set(trainer._pairs(0)), set(trainer._pairs(1))
    assert mined < first  # ESCI: Exact (1.0) only after round 0; Substitutes (0.1) too in round 0
    assert {gains[p] for p in first - mined} == {0.1} and {gains[p] for p in mined} == {1.0}
    assert [len(trainer._rows(0))] == [len(first)]


def test_train_products_trains_on_the_queries_of_a_product_sample_and_mines_the_whole_catalog(tiny_model, tmp_path):
    from sparsefit.pipeline.inputs import product_sample

    catalog = load_catalog(EXAMPLES / "catalog.csv")
    sample = {catalog.ids[i] for i in product_sample(len(catalog), 60, seed=13)}
    full = Trainer(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", _settings(tiny_model, tmp_path / "all"),
                   show_progress=False)
    settings = _settings(tiny_model, tmp_path / "run", train_products=60)
    trainer = Trainer(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", settings, show_progress=False)
    pairs = trainer._pairs(0)
    expected = {k for k, p in full._pairs(0) if p in sample}  # computed from the full run's pairs and the sample
    assert set(trainer.train.query_keys) == expected and 0 < len(expected) < len(set(full.train.query_keys))
    assert {k for k, _ in pairs} == expected
    assert any(p not in sample for _, p in pairs)  # a sampled query keeps all its positives
    assert trainer.test.keys() == full.test.keys()  # evaluation: the same held-out queries
    recorded = json.loads((tmp_path / "run" / "inputs.json").read_text())["train_products"]
    assert recorded == {"products": 60, "queries": len(expected), "of_queries": len(set(full.train.query_keys))}
    positives = {p for _, p in full._pairs(0)}
    seed = next(s for s in range(100) if catalog.ids[product_sample(len(catalog), 1, seed=s)[0]] not in positives)
    with pytest.raises(SparsefitError, match="no training query has a positive among the 1 sampled"):
        Trainer(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv",
                _settings(tiny_model, tmp_path / "one", train_products=1, seed=seed), show_progress=False)
