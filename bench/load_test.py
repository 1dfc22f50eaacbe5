"""Load test of `sparsefit serve`: N concurrent clients POST /search for S seconds on loopback.

Prints a table and writes JSON (errors, latency p50/p90/p99/max, requests per second).

    .venv/bin/python bench/load_test.py RUN --queries ../shared/data/homedepot/judgments.csv   # starts the server
    .venv/bin/python bench/load_test.py --url http://127.0.0.1:8000 --queries queries.csv      # an existing one
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def read_queries(path: Path, limit: int = 5000) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        column = next(c for c in reader.fieldnames or [] if c in ("query", "search_term", "q"))
        queries = list(dict.fromkeys(row[column] for row in reader if row[column].strip()))
    return queries[:limit]


async def client(url: str, queries: list[str], until: float, seed: int, latencies: list[float], errors: list[str]) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=30.0) as http:
        while time.perf_counter() < until:
            body = {"query": rng.choice(queries), "limit": 10}
            began = time.perf_counter()
            try:
                response = await http.post(f"{url}/search", json=body)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:120]}")
                else:
                    latencies.append((time.perf_counter() - began) * 1000)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")


async def load(url: str, queries: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(client(url, queries, until, i, latencies, errors) for i in range(clients)))
    wall = time.perf_counter() - began
    lat = np.array(latencies) if latencies else np.zeros(1)
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(latencies) + len(errors), "ok": len(latencies),
            "errors": len(errors), "error_examples": errors[:5], "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p90_ms": round(float(np.percentile(lat, 90)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "max_ms": round(float(lat.max()), 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run folder to serve (omit with --url)")
    parser.add_argument("--url", help="an already running service")
    parser.add_argument("--queries", type=Path, required=True, help="CSV with a query column (query/search_term)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "load_test.json")
    args = parser.parse_args()
    queries = read_queries(args.queries)
    server = None
    url = args.url
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "sparsefit", "serve", args.run, "--port", str(port)],
                                  env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 600  # the first start fits the confidence model
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=60).json()
                break
            except httpx.HTTPError:
                if time.time() > deadline or (server is not None and server.poll() is not None):
                    raise SystemExit("the service did not come up")
                time.sleep(1)
        asyncio.run(load(url, queries, 5, 3.0))  # warm up
        result = load_result = asyncio.run(load(url, queries, args.clients, args.seconds))
        result = {"url": url, "run": health.get("default_run"), "queries": len(queries), **load_result}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    args.output.write_text(json.dumps(result, indent=2))
    from rich.console import Console
    from rich.table import Table

    table = Table("clients", "seconds", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                  title=f"POST /search on {url} ({result['run']['products'] if result.get('run') else '?'} products)")
    table.add_row(*(str(result[k]) for k in ("clients", "seconds", "requests", "errors", "requests_per_s", "p50_ms",
                                             "p90_ms", "p99_ms", "max_ms")))
    Console().print(table)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
