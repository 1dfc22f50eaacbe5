"""Indexing at scale: `sparsefit index` on synthetic catalogs of 250k, 1M and 2M products, its peak memory and
throughput against encoding alone.

For each size the bench:

1. writes a synthetic catalog CSV into a temporary folder, a row at a time (the generator holds only the
   54,667 Home Depot titles): ``product_uid`` (a number), ``product_title`` (a Home Depot title, a few
   words of another random title and a model number) and ``price``;
2. runs ``sparsefit index CATALOG --model splade-tiny --output DIR`` in a child process and takes its peak
   RSS from ``wait4`` (the child's own ``ru_maxrss``), its products/s from the command's last line, and
   the size of the Qdrant Edge folder it wrote;
3. runs *encoding alone* in another child: the same file read in the same chunks by the same reader,
   each chunk encoded by the same model and dropped, nothing indexed: its products/s is the floor the
   indexing rate is compared with, and its peak RSS is the memory of the streaming itself;
4. opens the finished index in a third child, reads every point's payload and vector back, and measures
   how much that child's RSS grew: *the engine's own index*, the memory that must grow with the catalog
   (Edge keeps its sparse inverted index and id tracker in RAM, and the pages of its vector and payload
   storage stay resident in the process that wrote them).

"Peak RSS excluding the engine's own index" is the indexing run's peak RSS minus that growth: what the
streaming costs (Python, torch and the model, one chunk of texts, vectors and payloads, the ids seen so
far at 8 bytes a product). The bars: at the largest size it is at most 1.25x the smallest size's, and
indexing runs at no less than 1/1.3 of the encoding-alone rate.

Usage (from the repo root, after ``make install``)::

    .venv/bin/python bench/index_scale.py                           # 250k, 1M, 2M: writes bench/index_scale.json
    .venv/bin/python bench/index_scale.py --sizes 20000,80000       # a quick look
    .venv/bin/python bench/index_scale.py --encode-limit 250000     # encoding alone on each catalog's first 250k rows

The titles come from ``../shared/data/homedepot/products.csv`` (never copied into the repo).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPARSEFIT_BENCH_DATA", ROOT.parent / "shared" / "data" / "homedepot"))
MODEL = "splade-tiny"
PEAK_BAR = 1.25  # peak RSS (excluding the engine's index) at the largest size over the smallest
RATE_BAR = 1.3  # encoding-alone products/s over indexing products/s
FIRST_ID = 1_000_000  # product ids are FIRST_ID, FIRST_ID + 1, ...


# ------------------------------------------------------------------ the synthetic catalog
def write_catalog(path: Path, size: int, texts: str = "long", seed: int = 7) -> dict:
    """``size`` products from Home Depot titles, written a row at a time (memory: the titles only).

    ``texts`` "long": a title, 2-4 words of another title and a model number; "short": a title and a model
    number (about a fifth fewer tokens to encode)."""
    import numpy as np

    with (DATA / "products.csv").open(encoding="utf-8", newline="") as handle:
        titles = [row["product_title"] for row in csv.DictReader(handle)]
    rng = np.random.default_rng(seed)
    began = time.perf_counter()
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["product_uid", "product_title", "price"])
        for start in range(0, size, 10_000):
            n = min(10_000, size - start)
            first, second = rng.integers(len(titles), size=n), rng.integers(len(titles), size=n)
            words, numbers, prices = rng.integers(2, 5, size=n), rng.integers(100, 99_999, size=n), rng.random(n) * 500
            if texts == "short":
                words[:] = 0
            for k in range(n):
                extra = " ".join(titles[second[k]].split()[: words[k]])
                text = f"{titles[first[k]]} {extra} M{numbers[k]}" if extra else f"{titles[first[k]]} M{numbers[k]}"
                out.writerow([FIRST_ID + start + k, text, f"{prices[k]:.2f}"])
    return {"bytes": path.stat().st_size, "seconds": round(time.perf_counter() - began, 1)}


# ------------------------------------------------------------------ children
def run_child(argv: list[str], log: Path) -> dict:
    """Run ``argv``; its exit code, wall time, own peak RSS (``wait4``: this child alone, in MB) and its RSS
    every few seconds (to see what grows: ``rss_mb`` holds [seconds, RSS, of it anonymous, of it file-backed],
    in MB, at each tenth of the run, and ``peak_anon_mb`` / ``peak_file_mb`` the largest samples)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    load = float(Path("/proc/loadavg").read_text().split()[0])  # other work on the machine slows every rate here
    began = time.perf_counter()
    samples: list[tuple[float, int, int, int]] = []
    with log.open("w") as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        poller = threading.Thread(target=_poll_rss, args=(child.pid, began, samples), daemon=True)
        poller.start()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    poller.join(5)
    tenths = [samples[round(k * (len(samples) - 1) / 10)] for k in range(11)] if samples else []
    return {"returncode": child.returncode, "wall_s": round(time.perf_counter() - began, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "load_before": load,
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "rss_mb": tenths,
            "peak_anon_mb": max((x[2] for x in samples), default=0), "peak_file_mb": max((x[3] for x in samples), default=0),
            "log": log.read_text(errors="replace")[-3000:]}


def _poll_rss(pid: int, began: float, samples: list[tuple[float, int, int, int]], every: float = 2.0) -> None:
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = status.read_text()
        except OSError:
            return
        if "State:\tZ" in text:
            return
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        mb = {key: round(int(fields.get(key, "0 kB").split()[0]) / 1024) for key in ("VmRSS", "RssAnon", "RssFile")}
        samples.append((round(time.perf_counter() - began), mb["VmRSS"], mb["RssAnon"], mb["RssFile"]))
        time.sleep(every)


def index_run(catalog: Path, folder: Path, log: Path, chunk_size: int) -> dict:
    argv = [sys.executable, "-m", "sparsefit.cli", "index", str(catalog), "--model", MODEL, "--output", str(folder),
            "--chunk-size", str(chunk_size)]
    out = run_child(argv, log)
    if out["returncode"] != 0:
        raise SystemExit(f"sparsefit index failed ({out['returncode']}):\n{out['log']}")
    found = re.search(r"Indexed ([\d,]+) products.* in (\d+) s, ([\d,]+) products/s \(reading (\d+) s, encoding (\d+) s, "
                      r"upserting (\d+) s\)", out["log"].replace("\n", " "))
    if not found:
        raise SystemExit(f"no summary line in the output of sparsefit index:\n{out['log']}")
    products, seconds, rate, read, encode, upsert = (int(g.replace(",", "")) for g in found.groups())
    out.update(products=products, seconds=seconds, products_per_s=rate,
               split_s={"read": read, "encode": encode, "upsert": upsert}, index_mb=round(folder_mb(folder)))
    del out["log"]
    return out


def encode_run(catalog: Path, log: Path, chunk_size: int, limit: int | None, result: Path) -> dict:
    argv = [sys.executable, __file__, "--one", "encode", "--catalog", str(catalog), "--chunk-size", str(chunk_size),
            "--json", str(result)] + (["--encode-limit", str(limit)] if limit else [])
    out = run_child(argv, log)
    if out["returncode"] != 0:
        raise SystemExit(f"encoding alone failed ({out['returncode']}):\n{out['log']}")
    del out["log"]
    return {**out, **json.loads(result.read_text())}


def open_run(folder: Path, log: Path, result: Path) -> dict:
    out = run_child([sys.executable, __file__, "--one", "open", "--index", str(folder), "--json", str(result)], log)
    if out["returncode"] != 0:
        raise SystemExit(f"opening the index failed ({out['returncode']}):\n{out['log']}")
    return json.loads(result.read_text())


def folder_mb(folder: Path) -> float:
    """The space the folder's files take on disk (allocated blocks: Edge preallocates its WAL sparsely)."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file()) / 1024**2


def child_encode(args) -> dict:
    """Encoding alone: the file read in chunks by the reader `sparsefit index` uses, each chunk encoded, dropped."""
    from sparsefit.bulk import _give_back_freed_memory
    from sparsefit.data.catalog import catalog_columns, catalog_of
    from sparsefit.data.stream import stream_table
    from sparsefit.models import load_encoder

    encoder = load_encoder(MODEL)
    products = 0
    began = time.perf_counter()
    encode_s = 0.0
    with stream_table(args.catalog, chunk_size=args.chunk_size) as stream:
        columns = None
        for table in stream:
            columns = columns or catalog_columns(table)
            part = catalog_of(table, columns, require_rows=False)
            t = time.perf_counter()
            encoder.encode_documents(part.texts)
            encode_s += time.perf_counter() - t
            products += len(part)
            _give_back_freed_memory()  # as `sparsefit index` does after each chunk
            if args.encode_limit and products >= args.encode_limit:
                break
    seconds = time.perf_counter() - began
    return {"products": products, "seconds": round(seconds, 1), "encode_s": round(encode_s, 1),
            "products_per_s": round(products / seconds)}


def child_open(args) -> dict:
    """The engine's own index: how much a process's memory grows when Qdrant Edge opens the finished index and
    every point's payload and vector are read back (so that all of its storage is resident, as it is in the
    process that wrote it)."""
    import qdrant_edge  # noqa: F401  the engine's own code is loaded before the baseline
    import scipy.sparse as sp

    from sparsefit.index import IndexLocation

    before = _memory_mb()
    index = IndexLocation(path=Path(args.index)).open(create=False)
    count = index.count()
    for start in range(0, count, 10_000):
        index._shard.retrieve(list(range(FIRST_ID + start, FIRST_ID + min(start + 10_000, count))), True, True)
    index.search(sp.csr_matrix(([1.0, 1.0], ([0, 0], [2000, 3000])), shape=(1, 30522)), limit=10)
    after = _memory_mb()
    index.close()
    return {"points": count, "engine_index_rss_mb": after["VmRSS"] - before["VmRSS"],
            "engine_index_anon_mb": after["RssAnon"] - before["RssAnon"],
            "engine_index_file_mb": after["RssFile"] - before["RssFile"], "rss_before_mb": before["VmRSS"]}


def _memory_mb() -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: round(int(fields[key].split()[0]) / 1024) for key in ("VmRSS", "RssAnon", "RssFile")}


# ------------------------------------------------------------------ driver
def measure(size: int, work: Path, args) -> dict:
    catalog = work / f"catalog-{size}.csv"
    print(f"… {size:,}: writing the catalog", flush=True)
    row: dict = {"products": size, "catalog": write_catalog(catalog, size, args.texts)}
    folder = work / f"index-{size}"
    print(f"… {size:,}: sparsefit index", flush=True)
    row["index"] = index_run(catalog, folder, work / f"index-{size}.log", args.chunk_size)
    print(f"… {size:,}: the engine's own index", flush=True)
    row["engine"] = open_run(folder, work / f"open-{size}.log", work / f"open-{size}.json")
    print(f"… {size:,}: encoding alone", flush=True)
    row["encode_only"] = encode_run(catalog, work / f"encode-{size}.log", args.chunk_size, args.encode_limit,
                                    work / f"encode-{size}.json")
    row["peak_rss_excluding_engine_mb"] = row["index"]["peak_rss_mb"] - row["engine"]["engine_index_rss_mb"]
    row["encode_over_index_rate"] = round(row["encode_only"]["products_per_s"] / row["index"]["products_per_s"], 3)
    # the same ratio in the same process and minutes: all the command's time over its encoding time
    split = row["index"]["split_s"]
    row["index_over_own_encode_time"] = round(sum(split.values()) / max(split["encode"], 1), 3)
    # and by CPU time, which other work on the machine changes far less than wall time
    e, i = row["encode_only"], row["index"]
    row["cpu_per_product_ms"] = {"index": round(1000 * i["cpu_s"] / i["products"], 3),
                                 "encode_only": round(1000 * e["cpu_s"] / e["products"], 3)}
    row["index_over_encode_cpu"] = round(row["cpu_per_product_ms"]["index"] / row["cpu_per_product_ms"]["encode_only"], 3)
    shutil.rmtree(folder, ignore_errors=True)
    catalog.unlink()
    print(json.dumps(row), flush=True)
    return row


def verdict(rows: list[dict]) -> dict:
    small, large = rows[0], rows[-1]
    growth = large["peak_rss_excluding_engine_mb"] / small["peak_rss_excluding_engine_mb"]
    worst_rate = max(r["encode_over_index_rate"] for r in rows)
    worst_own = max(r["index_over_own_encode_time"] for r in rows)
    worst_cpu = max(r["index_over_encode_cpu"] for r in rows)
    return {"peak_growth_excluding_engine": round(growth, 3), "peak_bar": PEAK_BAR, "peak_ok": growth <= PEAK_BAR,
            "peak_growth_including_engine": round(large["index"]["peak_rss_mb"] / small["index"]["peak_rss_mb"], 3),
            "worst_encode_over_index_rate": worst_rate, "rate_bar": RATE_BAR, "rate_ok": worst_rate <= RATE_BAR,
            "worst_index_over_own_encode_time": worst_own, "own_rate_ok": worst_own <= RATE_BAR,
            "worst_index_over_encode_cpu": worst_cpu, "cpu_rate_ok": worst_cpu <= RATE_BAR}


def table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("products", "index products/s", "encode-alone products/s", "ratio", "read / encode / upsert s",
              "all / encode s", "CPU ms/product index / encode", "load",
              "peak RSS MB", "engine's index MB (RSS)", "peak RSS excl. engine MB", "encode-alone peak MB",
              "Edge folder MB",
              title=f"sparsefit index, {MODEL}, chunks of {results['chunk_size']:,} ({results['machine']['cpus']} CPUs)")
    for r in results["rows"]:
        i, e = r["index"], r["encode_only"]
        split = i["split_s"]
        t.add_row(f"{r['products']:,}", f"{i['products_per_s']:,}",
                  f"{e['products_per_s']:,}" + ("" if e["products"] >= r["products"] else f" (first {e['products']:,})"),
                  f"{r['encode_over_index_rate']}×", f"{split['read']} / {split['encode']} / {split['upsert']}",
                  f"{r['index_over_own_encode_time']}×",
                  f"{r['cpu_per_product_ms']['index']} / {r['cpu_per_product_ms']['encode_only']} "
                  f"({r['index_over_encode_cpu']}×)", f"{i['load_before']} / {e['load_before']}",
                  f"{i['peak_rss_mb']:,}", f"{r['engine']['engine_index_rss_mb']:,}",
                  f"{r['peak_rss_excluding_engine_mb']:,}", f"{e['peak_rss_mb']:,}", f"{i['index_mb']:,}")
    Console(width=220).print(t)
    v = results.get("verdict")
    if v:
        print(f"peak RSS excluding the engine's own index, largest over smallest: {v['peak_growth_excluding_engine']}× "
              f"(bar ≤ {v['peak_bar']}×: {'met' if v['peak_ok'] else 'NOT met'}); encoding alone over indexing: "
              f"{v['worst_encode_over_index_rate']}× at worst (bar ≤ {v['rate_bar']}×: {'met' if v['rate_ok'] else 'NOT met'}); "
              f"in the command's own run, all its time over its encoding time {v['worst_index_over_own_encode_time']}× at worst; "
              f"CPU time per product, indexing over encoding alone {v['worst_index_over_encode_cpu']}× at worst")
    print("engine's index = how much a process's RSS grows when Qdrant Edge opens the finished index and reads every "
          "point back; peak RSS excl. engine = the indexing run's peak RSS minus that: Python, torch, the model, one "
          "chunk and 8 bytes a product")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250000,1000000,2000000", help="catalog sizes, smallest first")
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--encode-limit", type=int, default=0, help="encode alone only the first N products (0: all)")
    parser.add_argument("--texts", choices=("long", "short"), default="long",
                        help="long: title + words of another title + model number; short: title + model number")
    parser.add_argument("--work", help="folder for the catalogs and indexes (default: a temporary one)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "index_scale.json"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--catalog", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = {"encode": child_encode, "open": child_open}[args.one](args)
        result["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        Path(args.json).write_text(json.dumps(result))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results: dict = {"machine": {"cpus": os.cpu_count()}, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "model": MODEL, "chunk_size": args.chunk_size, "texts": args.texts,
                     "encode_limit": args.encode_limit or None, "rows": []}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for size in sizes:
            results["rows"].append(measure(size, Path(work), args))
            results["wall_s"] = round(time.perf_counter() - began)
            if len(results["rows"]) > 1:
                results["verdict"] = verdict(results["rows"])
            save(results, Path(args.output))  # after every size: a long run interrupted keeps what it measured
    table(results)
    print(f"wrote {args.output} and bench/results.json (key index_scale)")


def save(results: dict, output: Path) -> None:
    """Write the run's JSON, and the same under ``index_scale`` in ``bench/results.json`` (bench.py keeps it)."""
    output.write_text(json.dumps(results, indent=2) + "\n")
    combined = ROOT / "bench" / "results.json"
    kept = json.loads(combined.read_text()) if combined.exists() else {}
    kept["index_scale"] = results
    combined.write_text(json.dumps(kept, indent=2))


if __name__ == "__main__":
    main()
