"""sparsefit speed benchmark: every stage against its floor, printed as a table and written as JSON.

Each stage runs in its own subprocess so its peak memory (max RSS) is its own. Stages:

* ``matmul``   the machine's float32 matrix-multiply rate (GFLOP/s) with the same thread count (and
               bfloat16's beside it);
* ``encode``   documents and queries per second for each model, fast path vs plain
               sentence-transformers, against the float32 FLOP floor from the model's shapes and the
               real (unpadded) token counts; max |Δ| between the two paths. On CPUs with bfloat16
               matrix units the fast path screens the vocabulary in bfloat16 (exact float32 results);
               the float32-only fast path is timed beside it;
* ``train``    a training step (rows with the configured negatives) against its floor (3× forward);
* ``mining``   a full mining round on the catalog: encode + index + encode queries + search;
* ``search``   Qdrant Edge latency p50/p99 and batched throughput at the catalog's size and on
               synthetic SPLADE-like catalogs of 100k and 1M products, exact and two-stage (on one
               two-stage index; its upsert rate includes cutting the candidate vectors and writing
               the vector copy candidates are rescored from), with the share of the exact top 10
               that two-stage finds; two-stage again without the vector copy (the engine rescores,
               as a Qdrant server does); and the p50/p99 of a fixed
               computation timed the same way (this machine's own latency tail).

Usage (from the repo root, after ``make install``)::

    .venv/bin/python bench/bench.py                       # all stages, writes bench/results.json
    .venv/bin/python bench/bench.py --stages encode,search --sizes 100000

The data is the Home Depot set in ``../shared/data/homedepot`` (never copied into the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPARSEFIT_BENCH_DATA", ROOT.parent / "shared" / "data" / "homedepot"))
STAGES = ("matmul", "encode", "train", "mining", "search")


# ------------------------------------------------------------------ helpers (run inside a stage)
def _threads() -> int:
    import torch

    return torch.get_num_threads()


def matmul_gflops(seconds: float = 3.0, bfloat16: bool = False) -> dict:
    """Best sustained float32 GEMM rate: a square 2048 GEMM and the SPLADE projection shape.

    The peak is float32's; with ``bfloat16`` the same shapes in bfloat16 are reported beside it.
    """
    import torch

    out = {}
    shapes = {"square 2048": (2048, 2048, 2048), "projection 2048x128x30522": (2048, 128, 30522)}
    runs = [(name, shape, torch.float32) for name, shape in shapes.items()]
    if bfloat16:
        runs += [(f"bfloat16 {name}", shape, torch.bfloat16) for name, shape in shapes.items()]
    for name, (m, k, n), dtype in runs:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        torch.mm(a, b)
        best, began = 0.0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            t = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * m * k * n / (time.perf_counter() - t) / 1e9)
        out[name] = round(best, 1)
    return {"gflops": out, "peak_gflops": max(v for k, v in out.items() if not k.startswith("bfloat16")), "threads": _threads()}


def peak_now(seconds: float = 0.3) -> float:
    """The float32 GEMM rate (GFLOP/s, square 2048, best over ``seconds``) right now.

    This machine's speed drifts by a quarter within minutes, so a time is compared with a rate measured
    just before it (a paired measurement), not with one taken at the start of the stage.
    """
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best, began = 0.0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t) / 1e9)
    return best


def forward_flops_per_token(config, sequence_length: int) -> float:
    """Forward FLOPs of one token through a BERT MLM SPLADE model (matmuls only; the rest is small)."""
    h, f, layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    per_layer = 8 * h * h + 4 * h * f + 4 * sequence_length * h  # QKV+O, FFN, attention scores and mix
    return layers * per_layer + 2 * h * h + 2 * h * v  # + MLM transform + vocabulary projection


def flop_floor(config, tokenizer, texts: list[str], max_length: int, passes: float = 1.0) -> float:
    """FLOPs of encoding ``texts`` (``passes`` = 3 for forward + backward) over real tokens only."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    return passes * sum(n * forward_flops_per_token(config, n) for n in lengths), sum(lengths)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_homedepot(limit_products: int | None = None):
    from sparsefit.data import load_catalog, load_judgments, split_queries

    catalog = load_catalog(DATA / "products.csv")
    judgments = load_judgments(DATA / "judgments.csv", catalog)
    split = split_queries(judgments, test_fraction=0.2, seed=13)
    return catalog, judgments, split


def _mlm_config(encoder):
    return list(encoder.model)[0].auto_model.config


# ------------------------------------------------------------------ stages
def stage_matmul(args) -> dict:
    return matmul_gflops(bfloat16=True)


def stage_encode(args) -> dict:
    import numpy as np
    import pandas as pd

    from sparsefit.models import load_encoder
    from sparsefit.devices import bfloat16_is_fast

    peak = matmul_gflops(1.5)["peak_gflops"]
    screen = bfloat16_is_fast()
    titles = pd.read_csv(DATA / "products.csv")["product_title"].astype(str).tolist()[: args.texts]
    queries = pd.read_csv(DATA / "judgments.csv")["search_term"].astype(str).drop_duplicates().tolist()[: args.texts]
    results = []
    for alias in args.models.split(","):
        encoder = load_encoder(alias)
        model = encoder.model
        config, tokenizer = _mlm_config(encoder), encoder.tokenizer
        for kind, texts in (("documents", titles), ("queries", queries)):
            fast_fn = encoder.encode_documents if kind == "documents" else encoder.encode_queries
            st_fn = model.encode_document if kind == "documents" else model.encode_query
            fast_fn(texts)  # warm up: kernels for each shape are built once (a catalog encode reuses them)
            flops, tokens = flop_floor(config, tokenizer, texts, model.max_seq_length)
            fast, fast_runs = _paired_runs(args.repeats, lambda: fast_fn(texts), flops)
            float32_runs = fast_runs
            if screen:  # the fast path without the bfloat16 screen, for comparison
                _set_screen(encoder, False)
                float32_runs = _paired_runs(args.repeats, lambda: fast_fn(texts), flops)[1]
                _set_screen(encoder, True)
            began = time.perf_counter()
            reference = st_fn(texts, batch_size=64, convert_to_sparse_tensor=True, show_progress_bar=False)
            st_s = time.perf_counter() - began
            reference = reference.to_dense().numpy() if hasattr(reference, "to_dense") else np.asarray(reference)
            diff = float(np.abs(fast.toarray() - reference).max())
            fast_s = min(run["seconds"] for run in fast_runs)
            results.append({
                "model": alias, "kind": kind, "texts": len(texts), "tokens": tokens,
                "fast_texts_per_s": round(len(texts) / fast_s, 1), "st_texts_per_s": round(len(texts) / st_s, 1),
                "speedup_vs_st": round(st_s / fast_s, 2), "floor_s": round(flops / (peak * 1e9), 3), "fast_s": round(fast_s, 3),
                "vs_floor": _median_ratio(fast_runs), "runs": fast_runs, "max_abs_diff": diff, "bfloat16_screen": screen,
                "float32_fast_s": round(min(run["seconds"] for run in float32_runs), 3),
                "float32_vs_floor": _median_ratio(float32_runs), "float32_runs": float32_runs,
                "mean_nnz": round(fast.nnz / len(texts), 1),
            })
    return {"peak_gflops": peak, "repeats": args.repeats, "rows": results}


def _paired_runs(repeats: int, run, flops: float) -> tuple[object, list[dict]]:
    """Time ``run`` ``repeats`` times, each right after measuring the float32 GEMM rate (:func:`peak_now`).

    Returns the last result and, per run, its seconds, the rate just before it and its ratio to the
    floor at that rate (``flops`` at the peak rate).
    """
    runs, result = [], None
    for _ in range(repeats):
        peak = peak_now()
        began = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - began
        runs.append({"seconds": round(seconds, 3), "peak_gflops": round(peak, 1), "vs_floor": round(seconds * peak * 1e9 / flops, 3)})
    return result, runs


def _median_ratio(runs: list[dict]) -> float:
    import numpy as np

    return round(float(np.median([run["vs_floor"] for run in runs])), 2)


def _set_screen(encoder, on: bool) -> None:
    for route in ("document", "query"):
        fast = encoder._fast_path(route)
        if fast is not None:
            fast.screen = on


def stage_train(args) -> dict:
    from sparsefit.mining import MiningOptions  # noqa: F401  (same import cost as a real run)
    from sparsefit.models import load_encoder
    from sparsefit.training import TrainingOptions, train_round

    import numpy as np

    peak = matmul_gflops(1.5)["peak_gflops"]
    catalog, judgments, split = _load_homedepot()
    rng = np.random.default_rng(13)
    train = judgments.subset(set(split.train))
    pairs = [(k, p) for k, p, g in zip(train.query_keys, train.product_ids, train.gains.tolist()) if g >= 1.6]
    rows = []
    for k, p in pairs[: args.train_steps * args.train_batch]:
        row = {"query": train.query_text(k), "positive": catalog.texts[catalog.position(p)]}
        for j in range(args.negatives):
            row[f"negative_{j + 1}"] = catalog.texts[int(rng.integers(len(catalog)))]
        rows.append(row)
    encoder = load_encoder("splade-tiny")
    config, tokenizer = _mlm_config(encoder), encoder.tokenizer
    steps = []  # per optimiser step: when it ended, and the GEMM rate measured right after it (for the next step)

    def after_step(step, total, loss) -> None:
        ended = time.perf_counter()
        rate = peak_now(0.2)
        steps.append({"ended": ended, "peak_gflops": rate, "resumed": time.perf_counter()})

    with tempfile.TemporaryDirectory() as work:
        stats = train_round(encoder, rows, TrainingOptions(batch_size=args.train_batch, max_seq_length=64), Path(work),
                            on_step=after_step)
    fast_peak_mb = _peak_mb()  # before the reference run below, which holds the dense logits (several GB)
    reference_steps = []  # the same rows through sentence-transformers' own forward pass, fewer steps
    if args.reference_steps > 0:  # 0: skip it (a quick look at the fast path only)
        with tempfile.TemporaryDirectory() as work:
            train_round(load_encoder("splade-tiny"), rows[: args.reference_steps * args.train_batch],
                        TrainingOptions(batch_size=args.train_batch, max_seq_length=64, fast_path=False), Path(work),
                        on_step=lambda step, total, loss: reference_steps.append(time.perf_counter()))
    reference_s = float(np.median(np.diff(reference_steps))) if len(reference_steps) > 2 else None
    texts = [t for row in rows for t in row.values()]
    flops, tokens = flop_floor(config, tokenizer, texts, 64, passes=3.0)
    step_flops = flops / max(1, stats.steps)
    # The trainer's time includes set-up and a first step that builds its kernels: a step is the median of the
    # rest, each timed from the end of the rate measurement after the step before, and compared with that rate.
    paired = [(now["ended"] - before["resumed"], before["peak_gflops"]) for before, now in zip(steps, steps[1:])]
    step_s = float(np.median([seconds for seconds, _ in paired])) if paired else stats.seconds / max(1, stats.steps)
    ratios = [seconds * rate * 1e9 / step_flops for seconds, rate in paired]
    measuring = sum(step["resumed"] - step["ended"] for step in steps)  # rate measurements inside the trainer's time
    seconds = stats.seconds - measuring
    return {
        "peak_gflops": peak, "rows": len(rows), "negatives": args.negatives, "batch": args.train_batch,
        "steps": stats.steps, "seconds": round(seconds, 2), "examples_per_s": round(len(rows) / seconds, 1),
        "seconds_per_step": round(step_s, 3), "floor_s_per_step": round(step_flops / (peak * 1e9), 3),
        "vs_floor": round(float(np.median(ratios)), 2) if ratios else None,
        "vs_floor_range": [round(min(ratios), 2), round(max(ratios), 2)] if ratios else None,
        "step_peaks_gflops": [round(step["peak_gflops"], 1) for step in steps],
        "total_vs_floor": round(seconds * peak * 1e9 / flops, 2), "tokens": tokens,
        "fast_path_peak_rss_mb": round(fast_peak_mb), "reference_s_per_step": round(reference_s, 3) if reference_s else None,
        "speedup_vs_st": round(reference_s / step_s, 2) if reference_s else None,
    }


def stage_mining(args) -> dict:
    from sparsefit.indexing import build_index
    from sparsefit.index import Filter, IndexLocation
    from sparsefit.models import load_encoder

    catalog, judgments, split = _load_homedepot()
    train = judgments.subset(set(split.train))
    encoder = load_encoder("splade-tiny")
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as work:
        began = time.perf_counter()
        index, vectors = build_index(encoder, catalog, IndexLocation(path=Path(work) / "index"), show_progress=False, seconds=seconds)
        build_s = time.perf_counter() - began
        keys = list(dict.fromkeys(train.query_keys))
        began = time.perf_counter()
        query_vectors = encoder.encode_queries([train.query_text(k) for k in keys])
        seconds["encode queries"] = time.perf_counter() - began
        judged: dict[str, set[str]] = {}
        for k, p in zip(train.query_keys, train.product_ids):
            judged.setdefault(k, set()).add(p)
        filters = [Filter(exclude_ids=tuple(sorted(judged[k]))) for k in keys]
        began = time.perf_counter()
        with index:
            index.search_batch(query_vectors, limit=50, filters=filters)
        seconds["search"] = time.perf_counter() - began
    total = build_s + seconds["encode queries"] + seconds["search"]
    return {"products": len(catalog), "queries": len(keys), "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "other_s": round(build_s - seconds["encode"] - seconds["index"], 1), "total_s": round(total, 1)}


def stage_search(args) -> dict:
    import numpy as np
    import scipy.sparse as sp

    from sparsefit.models import load_encoder

    catalog, judgments, split = _load_homedepot()
    encoder = load_encoder("splade-tiny")
    sample = encoder.encode_documents(catalog.texts[:5000])
    queries = encoder.encode_queries([judgments.query_text(k) for k in judgments.keys()[: args.queries]])
    rng = np.random.default_rng(13)
    df = np.bincount(sample.indices, minlength=sample.shape[1]).astype(np.float64)
    df /= df.sum()
    nnz = np.diff(sample.indptr)
    values = sample.data
    two_stage = {"posting_cap": args.posting_cap, "query_terms": args.query_terms, "candidates": args.candidates}
    out = []
    for size in [int(s) for s in args.sizes.split(",")]:
        if size == len(catalog):  # the real catalog, encoded
            docs = encoder.encode_documents(catalog.texts)
            out.append(_edge_latency(docs, queries, "Home Depot titles", two_stage))
            continue
        counts = rng.choice(nnz, size=size)
        rows = np.repeat(np.arange(size), counts)
        terms = rng.choice(len(df), size=len(rows), p=df)  # terms drawn by document frequency
        docs = sp.csr_matrix((rng.choice(values, size=len(rows)), (rows, terms)), shape=(size, sample.shape[1]), dtype=np.float32)
        docs.sum_duplicates()  # a term drawn twice for one document becomes one (slightly fewer terms)
        out.append(_edge_latency(docs, queries, "synthetic", two_stage))
    return {"rows": out, "noise": _scheduling_noise()}


def _scheduling_noise(runs: int = 1000) -> dict:
    """p50/p99 of one fixed single-thread computation (~2 ms), timed like a search: the machine's own tail."""
    import numpy as np

    values = np.random.default_rng(0).random(40_000)
    for _ in range(20):
        np.sort(values)
    latencies = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(9):
            np.sort(values)
        latencies.append((time.perf_counter() - t) * 1000)
    p50, p99 = np.percentile(latencies, [50, 99])
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3), "p99_over_p50": round(float(p99 / p50), 2)}


def _edge_latency(docs, queries, kind: str, two_stage_settings: dict) -> dict:
    """Upsert ``docs`` into a fresh two-stage Qdrant Edge index; time exact and two-stage top-10 searches.

    The same index serves both (``exact=True`` searches only the full vectors). Each query is
    timed in three passes: p50/p99 of the first pass, and of each query's fastest pass (which
    takes out this machine's scheduling noise, not the engine's cost).
    """
    import numpy as np

    from sparsefit.index import TwoStage, open_index
    from sparsefit.index.two_stage import candidate_vectors
    from sparsefit.index.edge import VECTORS_DIR

    size = docs.shape[0]
    two_stage = TwoStage(**two_stage_settings)
    out = {"documents": size, "kind": kind, "mean_doc_nnz": round(docs.nnz / size, 1),
           "mean_query_nnz": round(queries.nnz / queries.shape[0], 1), "two_stage_settings": two_stage.settings}
    with tempfile.TemporaryDirectory() as work:
        index = open_index(path=Path(work) / "index", two_stage=two_stage)
        began = time.perf_counter()
        index.upsert([str(i) for i in range(size)], docs, batch_size=4096)
        out["upsert_per_s"] = round(size / (time.perf_counter() - began))
        cut = index.two_stage.thresholds
        out["candidate_doc_nnz"] = round(candidate_vectors(docs, cut).nnz / size, 1)
        tops = {}
        for mode, exact in (("exact", True), ("two_stage", False)):
            out[mode], tops[mode] = _timed_searches(index, queries, exact)
        index.close()
        # the same index without its vector copy: candidates rescored by the engine (the server's way)
        shutil.rmtree(Path(work) / "index" / VECTORS_DIR)
        index = open_index(path=Path(work) / "index")
        out["two_stage_engine_rescoring"], _ = _timed_searches(index, queries, False)
        index.close()
    overlap = [len(set(tops["exact"][i]) & set(tops["two_stage"][i])) / len(tops["exact"][i])
               for i in tops["exact"] if tops["exact"][i]]
    out["top10_overlap_with_exact"] = round(float(np.mean(overlap)), 4)
    out["capped_terms"] = len(cut or {})
    return out


def _timed_searches(index, queries, exact: bool) -> tuple[dict, dict]:
    """Top-10 latency of each query over three passes (after a warm-up) and batched throughput."""
    import numpy as np

    for i in range(min(50, queries.shape[0])):  # warm up
        index.search(queries[i], limit=10, with_payload=False, exact=exact)
    passes, tops = [], {}
    for _ in range(3):
        latencies = []
        for i in range(queries.shape[0]):
            t = time.perf_counter()
            hits = index.search(queries[i], limit=10, with_payload=False, exact=exact)
            latencies.append((time.perf_counter() - t) * 1000)
            tops[i] = [h.product_id for h in hits]
        passes.append(latencies)
    fastest = np.min(passes, axis=0)
    began = time.perf_counter()
    index.search_batch(queries, limit=10, exact=exact)
    stats = {"p50_ms": round(float(np.percentile(passes[0], 50)), 3),
             "p99_ms": round(float(np.percentile(passes[0], 99)), 3),
             "fastest_p50_ms": round(float(np.percentile(fastest, 50)), 3),
             "fastest_p99_ms": round(float(np.percentile(fastest, 99)), 3),
             "batched_qps": round(queries.shape[0] / (time.perf_counter() - began))}
    return stats, tops


# ------------------------------------------------------------------ driver
def _run_stage(name: str, argv: list[str]) -> dict:
    """Run one stage in a fresh interpreter; returns its JSON plus its own peak memory."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        target = handle.name
    began = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--one", name, "--json", target, *argv], check=True)
    result = json.loads(Path(target).read_text())
    os.unlink(target)
    result["wall_s"] = round(time.perf_counter() - began, 1)
    return result


def _table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    if "matmul" in results:
        m = results["matmul"]
        console.print(f"matmul: {m['gflops']} GFLOP/s with {m['threads']} threads (float32 peak {m['peak_gflops']})")
    if "encode" in results:
        rows = results["encode"]["rows"]
        screened = any(r.get("bfloat16_screen") for r in rows)
        t = Table("model", "kind", "texts", "fast texts/s", "ST texts/s", "speed-up", "float32 floor s", "fast s", "vs floor",
                  "float32 only s", "vs floor", "max |Δ|",
                  title=f"encode (fast path: best of {results['encode'].get('repeats', 1)} runs; vs floor: median of the runs, each "
                        "against the GEMM rate measured just before it; fast path at its default batch, sentence-transformers at batch 64"
                        + ("; fast = with the exact bfloat16 screen" if screened else "") + ")")
        for r in rows:
            t.add_row(r["model"], r["kind"], str(r["texts"]), str(r["fast_texts_per_s"]), str(r["st_texts_per_s"]),
                      f"{r['speedup_vs_st']}×", str(r["floor_s"]), str(r["fast_s"]), f"{r['vs_floor']}×",
                      str(r.get("float32_fast_s", r["fast_s"])), f"{r.get('float32_vs_floor', r['vs_floor'])}×", f"{r['max_abs_diff']:.1e}")
        console.print(t)
    if "train" in results:
        r = results["train"]
        console.print(f"train: {r['rows']} rows × (1 + 1 + {r['negatives']} texts), batch {r['batch']}: {r['examples_per_s']} rows/s, "
                      f"{r['seconds_per_step']} s/step (median after the first), {r['vs_floor']}× its floor (median over steps, each "
                      f"against the GEMM rate measured just before it; range {r.get('vs_floor_range')}); "
                      f"{r['seconds']} s in all with set-up: {r['total_vs_floor']}× the floor at the stage's start rate {r['peak_gflops']}; "
                      f"sentence-transformers' own forward pass {r.get('reference_s_per_step')} s/step ({r.get('speedup_vs_st')}× slower); "
                      f"peak memory {r.get('fast_path_peak_rss_mb')} MB before that reference run")
    if "mining" in results:
        r = results["mining"]
        console.print(f"mining round: {r['products']:,} products, {r['queries']:,} queries: {r['seconds']} other {r['other_s']} s, "
                      f"total {r['total_s']} s")
    if "search" in results:
        rows = results["search"]["rows"]
        settings = rows[0]["two_stage_settings"] if rows else {}
        t = Table("documents", "vectors", "search", "p50 ms", "p99 ms", "fastest-pass p50", "fastest-pass p99", "batched QPS",
                  "top-10 = exact", "upsert/s", "doc nnz", "query nnz",
                  title=f"Qdrant Edge search, top 10 (two-stage: {settings}; p50/p99 of the first of 3 passes, and of each query's fastest pass)")
        for r in rows:
            for mode in ("exact", "two_stage", "two_stage_engine_rescoring"):
                m = r[mode]
                t.add_row(f"{r['documents']:,}", r["kind"], mode.replace("_", "-"), str(m["p50_ms"]), str(m["p99_ms"]),
                          str(m["fastest_p50_ms"]), str(m["fastest_p99_ms"]), str(m["batched_qps"]),
                          "1" if mode == "exact" else str(r["top10_overlap_with_exact"]),
                          str(r["upsert_per_s"]), str(r["mean_doc_nnz"] if mode == "exact" else r["candidate_doc_nnz"]),
                          str(r["mean_query_nnz"]))
        console.print(t)
        noise = results["search"].get("noise")
        if noise:
            console.print(f"scheduling noise: a fixed computation timed the same way, p50 {noise['p50_ms']} ms, "
                          f"p99 {noise['p99_ms']} ms ({noise['p99_over_p50']}×)")
    peaks = {k: v.get("peak_rss_mb") for k, v in results.items() if isinstance(v, dict) and "peak_rss_mb" in v}
    console.print(f"peak memory (MB, max RSS per stage): {peaks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--models", default="splade-tiny,minilm-l6")
    parser.add_argument("--texts", type=int, default=2000, help="titles and queries per encode measurement")
    parser.add_argument("--repeats", type=int, default=5, help="fast encode runs per measurement (each paired with a GEMM rate)")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--reference-steps", type=int, default=6, help="training steps through sentence-transformers' own forward pass")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--negatives", type=int, default=2)
    parser.add_argument("--queries", type=int, default=1000, help="queries for the search latency")
    parser.add_argument("--sizes", default="54667,100000,1000000", help="synthetic catalog sizes for search")
    parser.add_argument("--posting-cap", type=int, default=20_000, help="two-stage search: postings kept per term")
    parser.add_argument("--query-terms", type=int, default=8, help="two-stage search: query terms that find candidates")
    parser.add_argument("--candidates", type=int, default=50, help="two-stage search: candidates rescored")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.one:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        result = globals()[f"stage_{args.one}"](args)
        result["peak_rss_mb"] = round(_peak_mb())
        Path(args.json).write_text(json.dumps(result))
        return
    argv = [a for a in sys.argv[1:]]
    results: dict = {"machine": {"cpus": os.cpu_count()}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for name in args.stages.split(","):
        print(f"… {name}", flush=True)
        results[name] = _run_stage(name, argv)
    kept = json.loads(Path(args.output).read_text()) if Path(args.output).exists() else {}
    if "index_scale" in kept:  # bench/index_scale.py's table lives in the same file
        results["index_scale"] = kept["index_scale"]
    Path(args.output).write_text(json.dumps(results, indent=2))
    _table(results)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
