"""Load test of `sparsefit serve`: N concurrent clients for S seconds on loopback, POST /search only or mixed traffic.

Search only (the default): every client POSTs /search. Mixed (``--mixed``, or ``--mix`` with weights):
each client draws its next request from the mix (default search 70 / explain 10 / products 15 / rules 5):

* ``search``    POST /search with a query from the file;
* ``explain``   POST /explain for a product one of the client's earlier searches returned (with that query);
* ``products``  GET /products/{id} for such a product;
* ``rules``     the rule endpoints: the client's rule added earlier is removed (DELETE /rules/{id}); with
                none pending, a new rule is added (POST /rules, anchor texts unique to the client and the
                rule) or the rules are listed (GET /rules), half and half. So a third of the rules share
                adds (~1.7 % of all requests at the default mix), a third removes and a third lists; a
                rule still pending when the time is up is removed after it (not timed), so the run's
                rules are as they were.

A request counts as an error when its status is not the endpoint's (200; 201 for adding a rule) or it
raises (connection error, timeout). Latency percentiles are over the requests that succeeded.

Prints a table and writes JSON: for search the same keys as before (clients, seconds, requests, ok,
errors, error_examples, requests_per_s, p50/p90/p99/max_ms: in mixed mode these are the search
requests'), and in mixed mode a "mixed" section: the mix, every endpoint's numbers and the overall ones.
It only talks to loopback (127.0.0.1, localhost, ::1) and stops by itself: after ``--seconds``, requests
still running get ``--grace`` seconds more and are then cancelled (counted as errors).

    .venv/bin/python bench/load_test.py RUN --queries ../shared/data/homedepot/judgments.csv   # starts the server
    .venv/bin/python bench/load_test.py RUN --queries queries.csv --mixed --output /tmp/lt.json
    .venv/bin/python bench/load_test.py RUN --queries queries.csv --mix search=60,explain=20,products=15,rules=5
    .venv/bin/python bench/load_test.py --url http://127.0.0.1:8000 --queries queries.csv      # an existing one
    .venv/bin/python bench/load_test.py RUN --queries q.csv --clients 1 --retrieval sparse,bm25,hybrid \
        --output bench/search_modes.json                                      # one client: latency per mode
    .venv/bin/python bench/load_test.py DENSE_RUN --queries q.csv --clients 1 \
        --retrieval sparse,bm25,hybrid,dense,hybrid-dense --output bench/search_modes.json   # a --dense run
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
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_MIX = {"search": 70, "explain": 10, "products": 15, "rules": 5}
MODES = ("sparse", "bm25", "hybrid", "dense", "hybrid-dense")  # /search retrieval modes
# Endpoint -> the status that counts as success.
EXPECTED = {"search": 200, "explain": 200, "products": 200, "rules_add": 201, "rules_remove": 200, "rules_list": 200}
REQUEST_TIMEOUT = 30.0


def read_queries(path: Path, limit: int = 5000) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        column = next(c for c in reader.fieldnames or [] if c in ("query", "search_term", "q"))
        queries = list(dict.fromkeys(row[column] for row in reader if row[column].strip()))
    return queries[:limit]


def parse_mix(text: str) -> dict[str, float]:
    """``search=70,explain=10,products=15,rules=5`` -> weights (missing kinds get 0; at least one > 0)."""
    mix = dict.fromkeys(DEFAULT_MIX, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in mix:
            raise argparse.ArgumentTypeError(f"unknown kind {name!r} in --mix; use {', '.join(DEFAULT_MIX)}")
        try:
            mix[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--mix {part!r}: the weight is not a number") from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"--mix {part!r}: weights cannot be negative")
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("--mix gives every kind weight 0")
    return mix


def check_loopback(url: str) -> str:
    """``url`` without a trailing slash, if it is http(s) on a loopback host; this bench talks to no other."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        raise SystemExit(f"--url {url!r}: the load test only talks to this machine (http://127.0.0.1:PORT)")
    return url.rstrip("/")


# --------------------------------------------------------------------------- measuring


@dataclass
class Stats:
    """Latencies of the successful requests and the errors, per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in EXPECTED})
    errors: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in EXPECTED})
    cleanup: Counter = field(default_factory=Counter)  # rules removed after the timed window: ok / failed

    async def call(self, endpoint: str, send) -> httpx.Response | None:
        """Time one request; the response when it had the expected status, else None (an error)."""
        began = time.perf_counter()
        try:
            response = await send()
        except (httpx.HTTPError, OSError) as exc:
            self.errors[endpoint].append(f"{type(exc).__name__}: {str(exc)[:120]}")
            return None
        except asyncio.CancelledError:
            self.errors[endpoint].append("cancelled: still running when the bench stopped")
            raise
        if response.status_code != EXPECTED[endpoint]:
            self.errors[endpoint].append(f"{response.status_code}: {response.text[:120]}")
            return None
        self.latencies[endpoint].append((time.perf_counter() - began) * 1000)
        return response


def summarize(latencies: list[float], errors: list[str], wall: float) -> dict:
    lat = np.array(latencies) if latencies else np.zeros(1)
    kinds = Counter(e.split(":", 1)[0] for e in errors)
    return {"requests": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_kinds": dict(kinds.most_common()), "error_examples": list(dict.fromkeys(errors))[:5],
            "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p90_ms": round(float(np.percentile(lat, 90)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "max_ms": round(float(lat.max()), 1)}


# --------------------------------------------------------------------------- clients


async def search_client(url: str, headers: dict, queries: list[str], until: float, seed: int, stats: Stats,
                        retrieval: str = "sparse") -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, headers=headers) as http:
        while time.perf_counter() < until:
            body = {"query": rng.choice(queries), "limit": 10, "retrieval": retrieval}
            await stats.call("search", lambda: http.post(f"{url}/search", json=body))


async def mixed_client(url: str, headers: dict, queries: list[str], mix: dict[str, float], until: float, seed: int,
                       stats: Stats, tag: str) -> None:
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    seen: deque[tuple[str, str]] = deque(maxlen=20)  # (query, product id) from this client's searches
    pending: list[str] = []  # ids of rules this client added and has not removed yet
    added = 0
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, headers=headers) as http:

        async def search() -> None:
            query = rng.choice(queries)
            response = await stats.call("search", lambda: http.post(f"{url}/search", json={"query": query, "limit": 10}))
            if response is not None:
                seen.extend((query, hit["product_id"]) for hit in response.json()["hits"][:5])

        try:
            while time.perf_counter() < until:
                kind = rng.choices(kinds, weights)[0]
                if kind in ("explain", "products") and not seen:
                    kind = "search"  # nothing found yet to explain or look up
                if kind == "search":
                    await search()
                elif kind == "explain":
                    query, product = rng.choice(seen)
                    body = {"query": query, "product_id": product}
                    await stats.call("explain", lambda: http.post(f"{url}/explain", json=body))
                elif kind == "products":
                    _, product = rng.choice(seen)
                    await stats.call("products", lambda: http.get(f"{url}/products/{quote(product, safe='')}"))
                elif pending:  # rules: remove the rule added earlier
                    rule = pending[-1]
                    if await stats.call("rules_remove", lambda: http.delete(f"{url}/rules/{rule}")) is not None:
                        pending.pop()
                    elif len(pending) > 3:
                        break  # removals keep failing: stop adding rules this client cannot take back
                elif rng.random() < 0.5:
                    added += 1
                    anchor = f"{tag} client {seed} rule {added}"
                    body = {"when": f"{anchor} {rng.choice(queries)}", "exclude": f"{anchor} not {rng.choice(queries)}"}
                    response = await stats.call("rules_add", lambda: http.post(f"{url}/rules", json=body))
                    if response is not None:
                        pending.append(response.json()["id"])
                else:
                    await stats.call("rules_list", lambda: http.get(f"{url}/rules"))
        finally:
            await asyncio.shield(remove_rules(http, url, pending, stats))


async def remove_rules(http: httpx.AsyncClient, url: str, rules: list[str], stats: Stats) -> None:
    """Take back rules still pending when the time is up (not timed, not in the endpoint counts)."""
    for rule in list(rules):
        try:
            response = await http.delete(f"{url}/rules/{rule}")
            stats.cleanup["ok" if response.status_code == 200 else f"failed {response.status_code}"] += 1
        except httpx.HTTPError as exc:
            stats.cleanup[f"failed {type(exc).__name__}"] += 1
        rules.remove(rule)


async def sweep_rules(url: str, headers: dict, tag: str, stats: Stats) -> None:
    """Remove every rule this bench added that is still there: an add cancelled at the deadline may have
    reached the service, so its client never learnt the id."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, headers=headers) as http:
        try:
            response = await http.get(f"{url}/rules")
            response.raise_for_status()
            left = [r["id"] for r in response.json()["rules"] if str(r.get("when", "")).startswith(tag + " ")]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            stats.cleanup[f"sweep failed {type(exc).__name__}"] += 1
            return
        await remove_rules(http, url, left, stats)


async def load(url: str, headers: dict, queries: list[str], clients: int, seconds: float, *,
               mix: dict[str, float] | None = None, grace: float = 10.0, seed: int = 0, retrieval: str = "sparse") -> dict:
    """Run the clients for ``seconds``; those still waiting ``grace`` seconds later are cancelled."""
    stats = Stats()
    began = time.perf_counter()
    until = began + seconds
    if mix is None:
        tasks = [asyncio.create_task(search_client(url, headers, queries, until, seed + i, stats, retrieval))
                 for i in range(clients)]
    else:
        tag = f"loadtest-{os.getpid()}-{int(time.time())}"  # begins every anchor text this run adds
        tasks = [asyncio.create_task(mixed_client(url, headers, queries, mix, until, seed + i, stats, tag))
                 for i in range(clients)]
    _, late = await asyncio.wait(tasks, timeout=seconds + grace)
    wall = time.perf_counter() - began
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)  # cancelled clients still take their rules back
    if mix is not None:
        if late:
            await asyncio.sleep(2.0)  # let the service finish requests whose clients were cancelled
        await sweep_rules(url, headers, tag, stats)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
    search = summarize(stats.latencies["search"], stats.errors["search"], wall)
    result = {"clients": clients, "seconds": round(wall, 1), **search}
    if mix is not None:
        endpoints = {name: summarize(stats.latencies[name], stats.errors[name], wall) for name in EXPECTED}
        everything = summarize([x for v in stats.latencies.values() for x in v],
                               [x for v in stats.errors.values() for x in v], wall)
        total = sum(mix.values())
        result["mixed"] = {"mix": {k: round(v / total * 100, 1) for k, v in mix.items()}, "overall": everything,
                           "endpoints": endpoints, "rules_removed_after": dict(stats.cleanup)}
    return result


# --------------------------------------------------------------------------- running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def print_table(result: dict, url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    products = result["run"]["products"] if result.get("run") else "?"
    if "mixed" not in result:
        table = Table("clients", "seconds", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                      title=f"POST /search on {url} ({products} products)")
        table.add_row(*(str(result[k]) for k in ("clients", "seconds", "requests", "errors", "requests_per_s", "p50_ms",
                                                 "p90_ms", "p99_ms", "max_ms")))
        Console().print(table)
        return
    mixed = result["mixed"]
    table = Table("endpoint", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                  title=f"mixed traffic on {url} ({products} products): {result['clients']} clients, "
                        f"{result['seconds']} s, mix " + " / ".join(f"{k} {v:g}" for k, v in mixed["mix"].items()))
    names = {"search": "search", "explain": "explain", "products": "product", "rules_add": "rule add",
             "rules_remove": "rule remove", "rules_list": "rules list"}
    keys = ("requests", "errors", "requests_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms")
    for name, stats in mixed["endpoints"].items():
        table.add_row(names[name], *(str(stats[k]) if stats["ok"] or k in keys[:3] else "-" for k in keys))
    table.add_row("all", *(str(mixed["overall"][k]) for k in keys), style="bold")
    Console().print(table)
    for name, stats in mixed["endpoints"].items():
        if stats["errors"]:
            print(f"{names[name]} errors {stats['error_kinds']}: {stats['error_examples'][0]}")
    if mixed["rules_removed_after"]:
        print(f"rules pending at the end, removed after the timed window: {mixed['rules_removed_after']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="run folder to serve (omit with --url)")
    parser.add_argument("--url", help="an already running service on this machine (http://127.0.0.1:PORT)")
    parser.add_argument("--token", default=os.environ.get("SPARSEFIT_TOKEN"),
                        help="bearer token for a service started with one (default: $SPARSEFIT_TOKEN)")
    parser.add_argument("--queries", type=Path, required=True, help="CSV with a query column (query/search_term)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds requests may still run after --seconds before they are cancelled")
    parser.add_argument("--mixed", action="store_true",
                        help="mixed traffic, mix " + ",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()))
    parser.add_argument("--mix", type=parse_mix, help="mixed traffic with these weights (implies --mixed), e.g. "
                                                      "search=70,explain=10,products=15,rules=5")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' choices (client i uses seed+i)")
    parser.add_argument("--retrieval", default="sparse",
                        help="search mode(s), comma-separated, measured one after the other on the same service: "
                             "sparse, bm25, hybrid, dense, hybrid-dense (e.g. sparse,bm25,hybrid; search-only traffic)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "load_test.json")
    args = parser.parse_args()
    retrievals = [r.strip() for r in args.retrieval.split(",") if r.strip()]
    if not retrievals or any(r not in MODES for r in retrievals):
        parser.error(f"--retrieval takes {', '.join(MODES)} (dense modes: a run trained with --dense), comma-separated")
    if len(retrievals) > 1 and (args.mixed or args.mix):
        parser.error("several --retrieval modes are measured with search-only traffic; leave out --mixed/--mix")
    if (args.run is None) == (args.url is None):
        parser.error("give a run folder to serve or --url of a running service (one of them)")
    if args.clients < 1 or args.seconds <= 0 or args.grace < 0:
        parser.error("--clients must be at least 1, --seconds above 0 and --grace at least 0")
    mix = args.mix or (dict(DEFAULT_MIX) if args.mixed else None)
    queries = read_queries(args.queries)
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    server = None
    url = check_loopback(args.url) if args.url else None
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "sparsefit", "serve", args.run, "--host", "127.0.0.1",
                                   "--port", str(port)], env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 600  # the first start fits the confidence model
        while True:
            try:
                response = httpx.get(f"{url}/health", headers=headers, timeout=60)
                if response.status_code == 200:
                    health = response.json()
                    break
                if response.status_code in (401, 403):
                    raise SystemExit(f"the service refused the health check: {response.status_code} {response.text[:200]}")
            except httpx.HTTPError:
                pass
            if time.time() > deadline or (server is not None and server.poll() is not None):
                raise SystemExit("the service did not come up")
            time.sleep(1)
        by_mode = {}
        for retrieval in retrievals:
            asyncio.run(load(url, headers, queries, 5, 3.0, seed=10_000 + args.seed, retrieval=retrieval))  # warm up
            by_mode[retrieval] = asyncio.run(load(url, headers, queries, args.clients, args.seconds, mix=mix,
                                                  grace=args.grace, seed=args.seed, retrieval=retrieval))
        result = {"url": url, "run": health.get("default_run"), "queries": len(queries),
                  "mode": "mixed" if mix else "search", "retrieval": retrievals[0], **by_mode[retrievals[0]]}
        if len(retrievals) > 1:
            result["retrievals"] = by_mode
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    args.output.write_text(json.dumps(result, indent=2))
    print_table(result, url)
    for retrieval, measured in result.get("retrievals", {}).items():
        print(f"{retrieval:>12}: {measured['requests_per_s']:>7} req/s, p50 {measured['p50_ms']} ms, "
              f"p99 {measured['p99_ms']} ms, {measured['errors']} errors of {measured['requests']}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
