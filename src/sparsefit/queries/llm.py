"""Queries written by an LLM through any OpenAI-compatible chat-completions endpoint.

Works with OpenAI, Ollama (``http://localhost:11434/v1``), vLLM, a LiteLLM proxy…: several products
per request, a bounded number of requests in flight, retries with exponential backoff (honouring
``Retry-After``), and a disk cache keyed by the model, the prompt template and the product's text,
so an interrupted run resumes without paying twice. Products that still fail after the retries are
counted and named in the report, never dropped silently.

Example:
    >>> generator = LLMQueryGenerator("http://localhost:11434/v1", "llama3.2", cache_dir="runs/llm-cache")  # doctest: +SKIP
    >>> queries, report = generator.generate(catalog)                                                      # doctest: +SKIP
    >>> report.failed_products                                                                             # doctest: +SKIP
    []
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sparsefit.data import Catalog
from sparsefit.errors import SparsefitError
from sparsefit.files import write_atomic
from sparsefit.queries.offline import GeneratedQuery, normalized

DEFAULT_PROMPT = """You write the search queries that shoppers type into an online store's search box.
For each numbered product below, write {per_product} different queries a real customer might type when looking for it.
Keep them short (2 to 6 words), lower case, and varied: the product type, brand and type, a key attribute, a use.
Never copy the product's title.
Answer with JSON only, in this form: {{"queries": [{{"product": 1, "queries": ["...", "..."]}}]}}

Products:
{products}"""
API_KEY_VARIABLES = ("SPARSEFIT_LLM_API_KEY", "OPENAI_API_KEY")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class LLMReport:
    """What the LLM generation did, saved next to the queries."""

    products: int = 0
    cached: int = 0  # products answered from the disk cache
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    generated: int = 0  # queries kept
    failed_products: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class LLMQueryGenerator:
    """Generates queries for products with a chat-completions model; see the module docstring."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        per_product: int = 3,
        products_per_request: int = 10,
        concurrency: int = 4,
        max_retries: int = 4,
        backoff: float = 1.0,
        timeout: float = 120.0,
        temperature: float = 0.7,
        prompt_template: str | None = None,
        cache_dir: str | Path | None = None,
        transport=None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise SparsefitError(f"LLM URL '{url}' is not an http(s) URL", hint="pass e.g. --llm-url https://api.openai.com/v1")
        self.endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/chat/completions") else "/chat/completions")
        self.model = model
        self.api_key = api_key if api_key is not None else next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)
        self.per_product = per_product
        self.products_per_request = max(1, products_per_request)
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.timeout = timeout
        self.temperature = temperature
        self.prompt_template = prompt_template or DEFAULT_PROMPT
        if "{products}" not in self.prompt_template:
            raise SparsefitError("the prompt template has no {products} placeholder", hint="put {products} where the product list goes")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.transport = transport
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------------------
    def generate(
        self, catalog: Catalog, *, product_positions: Sequence[int] | None = None, progress: Callable[[int], None] | None = None
    ) -> tuple[list[GeneratedQuery], LLMReport]:
        """Queries for the catalog's products (all, or those at ``product_positions``) and a report."""
        import httpx

        started = time.perf_counter()
        positions = list(range(len(catalog))) if product_positions is None else list(product_positions)
        report = LLMReport(products=len(positions))
        answers: dict[int, list[str]] = {}
        todo = []
        for i in positions:
            cached = self._cache_get(catalog.texts[i])
            if cached is not None:
                answers[i] = cached
                report.cached += 1
            else:
                todo.append(i)
        if progress and report.cached:
            progress(report.cached)
        chunks = [todo[k : k + self.products_per_request] for k in range(0, len(todo), self.products_per_request)]
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout, headers=headers, transport=self.transport) as client, \
                ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._run_chunk, client, catalog, chunk, report) for chunk in chunks]
            try:
                for future in as_completed(futures):
                    done, failed = future.result()
                    answers.update(done)
                    with self._lock:
                        report.failed_products.extend(catalog.ids[i] for i in failed)
                    if progress:
                        progress(len(done) + len(failed))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        queries = [
            GeneratedQuery(q, catalog.ids[i], f"llm:{self.model}", "llm")
            for i in positions if i in answers for q in answers[i]
        ]
        report.generated = len(queries)
        report.failed_products.sort(key=lambda pid: catalog.position(pid))
        report.seconds = round(time.perf_counter() - started, 2)
        return queries, report

    # -- one request (with retries) ---------------------------------------------------------------
    def _run_chunk(self, client, catalog: Catalog, chunk: list[int], report: LLMReport) -> tuple[dict[int, list[str]], list[int]]:
        remaining = list(chunk)
        done: dict[int, list[str]] = {}
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._lock:
                    report.retries += 1
            try:
                answer, wait = self._ask(client, [catalog.texts[i] for i in remaining], report)
            except _Fatal as fatal:
                self._count(report, fatal.reason)
                return done, remaining
            if answer is None:  # retryable failure
                if attempt < self.max_retries:
                    time.sleep(wait if wait is not None else self.backoff * 2 ** attempt)
                continue
            still = []
            for slot, i in enumerate(remaining, start=1):
                queries = _clean(answer.get(slot, []), catalog.texts[i], self.per_product)
                if queries:
                    done[i] = queries
                    self._cache_put(catalog.texts[i], queries)
                else:
                    still.append(i)
            if still:
                self._count(report, "product missing from an answer")
            remaining = still
            if not remaining:
                break
        return done, remaining

    def _ask(self, client, texts: list[str], report: LLMReport) -> tuple[dict[int, list[str]] | None, float | None]:
        import httpx

        products = "\n".join(f"{n}. {' '.join(text.split())[:500]}" for n, text in enumerate(texts, start=1))
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.prompt_template.format(products=products, per_product=self.per_product)}],
            "temperature": self.temperature,
        }
        with self._lock:
            report.requests += 1
        try:
            response = client.post(self.endpoint, json=body)
        except httpx.TimeoutException:
            self._count(report, "timeout")
            return None, None
        except httpx.TransportError as error:
            self._count(report, f"connection: {type(error).__name__}")
            return None, None
        if response.status_code in RETRY_STATUS:
            self._count(report, f"HTTP {response.status_code}")
            return None, _retry_after(response)
        if response.status_code >= 400:
            raise _Fatal(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            return _parse_answer(content), None
        except (ValueError, KeyError, IndexError, TypeError):
            self._count(report, "unreadable answer")
            return None, 0.0

    def _count(self, report: LLMReport, reason: str) -> None:
        with self._lock:
            report.errors[reason] = report.errors.get(reason, 0) + 1

    # -- cache ---------------------------------------------------------------------------------
    def _cache_key(self, text: str) -> str:
        return hashlib.sha256(json.dumps([self.model, self.prompt_template, self.per_product, text]).encode()).hexdigest()

    def _cache_get(self, text: str) -> list[str] | None:
        if self.cache_dir is None:
            return None
        key = self._cache_key(text)
        path = self.cache_dir / key[:2] / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))["queries"]
        except (OSError, ValueError, KeyError):
            return None

    def _cache_put(self, text: str, queries: list[str]) -> None:
        if self.cache_dir is None:
            return
        key = self._cache_key(text)
        path = self.cache_dir / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"queries": queries}))


class _Fatal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _parse_answer(content: str) -> dict[int, list[str]]:
    """``{product number: [queries]}`` from the model's JSON answer (code fences and chatter around it allowed)."""
    match = re.search(r"\{.*\}", content, re.DOTALL)
    if match is None:
        raise ValueError("no JSON object in the answer")
    data = json.loads(match.group(0))
    items = data["queries"] if isinstance(data, dict) and "queries" in data else data
    out: dict[int, list[str]] = {}
    if isinstance(items, dict):  # {"1": [...], "2": [...]}
        items = [{"product": k, "queries": v} for k, v in items.items()]
    for item in items:
        number = int(item["product"])
        queries = item["queries"]
        if isinstance(queries, str):
            queries = [queries]
        out[number] = [str(q) for q in queries]
    return out


def _clean(queries: list[str], title: str, limit: int) -> list[str]:
    """Distinct, non-empty queries that are not the product's title, at most ``limit``."""
    out, seen = [], {normalized(title), ""}
    for query in queries:
        query = " ".join(str(query).split()).strip(" \"'")
        key = normalized(query)
        if key not in seen and len(query) <= 200:
            seen.add(key)
            out.append(query)
    return out[:limit]
