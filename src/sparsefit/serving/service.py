"""A trained run as a search service: search with filters, confidence and exclusion rules; explain.

Example:
    >>> service = SearchService.open("runs/train-20261125")            # doctest: +SKIP
    >>> service.search("cordless drill", limit=3, filter={"brand": "Acme"})["hits"]   # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.evaluation.confidence import ConfidenceModel, hit_features
from sparsefit.run import RunFolder, exported
from sparsefit.serving.rules import ExclusionRule, RuleBook

MAX_LIMIT = 1000
RETRIEVALS = ("sparse", "bm25", "dense", "hybrid", "hybrid-dense")


class SearchService:
    """One run's tuned model over its indexed catalog; thread-safe."""

    def __init__(self, folder: Path, settings, encoder, index) -> None:
        self.folder = folder
        self.settings = settings
        self.encoder = encoder
        self.index = index
        self._encode_lock = threading.Lock()
        self.rules = RuleBook(index, encoder, self._encode_lock)
        self.confidence: ConfidenceModel | None = ConfidenceModel.load(folder)
        self._index_lock = threading.Lock()
        self._batcher = QueryBatcher(encoder, self._encode_lock)
        self._base = None
        self._base_lock = threading.Lock()
        self._catalog = None
        self._catalog_lock = threading.Lock()
        problem = RunFolder(folder).confidence_problem  # training could not fit it, and said why
        self.confidence_problem: str | None = problem.read_text(encoding="utf-8").strip() if problem.is_file() else None
        self.products = index.count()
        keys = index.get_metadata().get("payload_keys")
        self.payload_keys: frozenset[str] | None = frozenset(keys) if isinstance(keys, list) else None
        types = index.get_metadata().get("payload_types")
        self.payload_types: dict[str, str] | None = types if isinstance(types, dict) else None
        self.bm25, self.fusion, self.fusion_dense, self.feedback_strategy = _retrieval_settings(folder, index)
        self.dense = None  # the run's dense model (``--dense``), set by open() when its index has dense vectors
        self.dense_problem: str | None = None  # why a run with dense vectors serves without them
        self._dense_lock = threading.Lock()

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, run: str | Path, *, calibrate: bool = True, device: str | None = None) -> SearchService:
        """Open a finished run folder (its ``model/`` and catalog index); fits confidence if missing.

        ``device`` (default: the run's setting, ``auto``) is where queries are encoded."""
        from sparsefit.config import load_settings
        from sparsefit.devices import resolve_device
        from sparsefit.indexing import check_index_model
        from sparsefit.models import load_encoder
        from sparsefit.pipeline import index_location
        folder = Path(run)
        run = RunFolder(folder)
        from sparsefit.pipeline import is_multi_domain

        if is_multi_domain(folder):  # a multi-domain run: each domain is a run folder with its own index
            names = sorted(p.name for p in (folder / "domains").iterdir()) if (folder / "domains").is_dir() else []
            raise SparsefitError("a multi-domain run has one index per domain", file=folder,
                                 hint=f"search or serve one of them: {folder / 'domains'}/<{'|'.join(names) or 'name'}>")
        if not run.model.is_dir() or not run.config.is_file():
            raise SparsefitError("not a finished training run (no model/ or config.yaml)", file=folder,
                                 hint="train first with `sparsefit train`, or finish it with --resume")
        if not exported(folder):  # model/ may be an older export, or one being written
            raise SparsefitError("the run has not finished exporting its model", file=folder,
                                 hint=f"wait for the run to finish, or continue it with `sparsefit train --resume {folder}`")
        settings = load_settings(run.config, output=folder)
        location = index_location(settings, run.index)
        if not location.exists():
            raise SparsefitError("the run has no catalog index", file=folder,
                                 hint="finish the run with `sparsefit train --resume RUN`")
        encoder = load_encoder(str(run.model), max_seq_length=settings.max_seq_length,
                               device=resolve_device(device or settings.device))
        index = location.open(create=False)
        try:
            check_index_model(index, encoder, folder)
            service = cls(folder, settings, encoder, index)
            service.dense, service.dense_problem = _load_run_dense(index, settings, resolve_device(device or settings.device))
        except BaseException:
            index.close()
            raise
        if calibrate and service.confidence is None and run.split.is_file():
            try:
                service.confidence, service.confidence_problem = service.fit_confidence(), None
            except SparsefitError as exc:  # e.g. no relevant product among the held-out hits: serve without confidence
                service.confidence_problem = str(exc)
            except BaseException:
                service.close()
                raise
        return service

    def close(self) -> None:
        self._batcher.stop()
        self.index.close()

    def info(self) -> dict[str, Any]:
        return {"run": self.folder.name, "model": self.settings.base_model + " (tuned)", "products": self.products,
                "engine": self.index.engine, "rules": len(self.rules.rules),
                "confidence": self.confidence.report.get("ece_cross_fitted") if self.confidence else None,
                "confidence_problem": self.confidence_problem, "retrievals": self.retrievals(),
                "dense": self.dense.name if self.dense is not None else None, "dense_problem": self.dense_problem}

    def retrievals(self) -> list[str]:
        """The retrieval modes this run's index can serve (BM25 and dense vectors are in newer and ``--dense`` runs)."""
        have = {"sparse"} | ({"bm25", "hybrid"} if self.bm25 is not None else set())
        if self.dense is not None:
            have |= {"dense"} | ({"hybrid-dense"} if self.bm25 is not None else set())
        return [r for r in RETRIEVALS if r in have]

    # -- search ---------------------------------------------------------------------------
    def encode_query(self, query: str) -> sp.csr_matrix:
        """The query's sparse vector; concurrent requests are encoded together in one batch."""
        return self._batcher.encode(query)

    def search(self, query: str, *, limit: int = 10, offset: int = 0, filter: dict[str, Any] | None = None,
               rules: bool = True, retrieval: str = "sparse", feedback: list[tuple[str, float]] | None = None,
               boost: dict[str, Any] | None = None) -> dict[str, Any]:
        """Top ``limit`` hits after ``offset``, each with score, confidence and payload.

        ``filter`` is the payload filter syntax of ``sparsefit search --filter``
        (``{"brand": "Acme", "price": {"lt": 50}}``). Exclusion rules that fire remove their products.
        ``retrieval``: ``sparse`` (the tuned model), ``bm25`` (Qdrant's BM25), ``hybrid`` (both in one Qdrant
        query, fused with the run's fitted fusion), and for a run trained with ``--dense``: ``dense`` (its dense
        model) and ``hybrid-dense`` (all three fused, the three-way weights fitted in that run). ``feedback``: (product id, score) on earlier hits, e.g.
        clicked = 1, skipped = 0: the model's leg becomes Qdrant's relevance-feedback query (the run's fitted
        coefficients). ``boost``: ``{"field": weight}`` over numeric or true/false payload fields, the search's top
        products rescored by ``score · (1 + Σ weight · field)`` in Qdrant (:mod:`sparsefit.index.boost`).
        """
        from sparsefit.index import Boost, Filter, parse_filter

        query = _check_query(query)
        if retrieval not in RETRIEVALS:
            raise SparsefitError(f"unknown retrieval {retrieval!r}", hint=f"use one of {', '.join(RETRIEVALS)}")
        if retrieval in ("bm25", "hybrid", "hybrid-dense") and self.bm25 is None:
            raise SparsefitError("this run's index has no BM25 vectors (it was built before sparsefit indexed them)",
                                 hint="rebuild it with `sparsefit train --resume RUN` after deleting RUN/index, or `sparsefit index`")
        if retrieval in ("dense", "hybrid-dense") and self.dense is None:
            if self.dense_problem:
                raise SparsefitError(f"this run's dense model is not loaded: {self.dense_problem}",
                                     hint=f"use one of {', '.join(self.retrievals())}")
            raise SparsefitError("this run's index has no dense vectors (the run was trained without --dense)",
                                 hint=f"use one of {', '.join(self.retrievals())}, or train with --dense minilm-l6")
        if feedback and retrieval in ("bm25", "dense"):
            raise SparsefitError("relevance feedback works on the model's vectors", hint="use retrieval sparse, hybrid or hybrid-dense")
        boosted = Boost.parse(boost, self._boostable()) if boost else None
        if not 1 <= limit <= MAX_LIMIT:
            raise SparsefitError(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
        if not 0 <= offset <= 10_000:
            raise SparsefitError(f"offset must be 0 to 10000, got {offset}")
        parsed = parse_filter(filter) if filter else Filter()
        self._check_filter_keys(parsed)
        began = time.perf_counter()
        vector = self.encode_query(query)
        with self._index_lock:
            fired = self.rules.fire(vector, self.index) if rules else []
        excluded = set().union(*(f.excluded for f in fired)) if fired else set()
        if excluded:
            parsed = Filter(must=parsed.must, must_not=parsed.must_not,
                            exclude_ids=tuple(sorted(set(parsed.exclude_ids) | excluded)))
        want = offset + limit + 1  # one more for the gap-to-next feature of the last hit shown
        lexical = self.bm25.queries([query]) if retrieval in ("bm25", "hybrid", "hybrid-dense") else None
        embedding = self._embed(query) if retrieval in ("dense", "hybrid-dense") else None
        fusion = {"hybrid": self.fusion, "hybrid-dense": self.fusion_dense}.get(retrieval)
        with self._index_lock:
            hits = self.index.search(vector if retrieval in ("sparse", "hybrid", "hybrid-dense") else None, limit=want,
                                     filter=None if parsed.is_empty else parsed, with_payload=True, bm25=lexical,
                                     dense=embedding, fusion=fusion,
                                     feedback=feedback or None, strategy=self.feedback_strategy, boost=boosted)
        # Confidence was fitted on unfiltered result lists: a filtered list (or one that rules cut) has other
        # score gaps and ranks, so its confidence would not be calibrated; it is left out and the reason given.
        note = self._confidence_note(filtered=not parsed.is_empty,
                                     other=retrieval != "sparse" or bool(feedback) or boosted is not None)
        confidence = None if note else self._confidence([h.score for h in hits])
        shown = hits[offset : offset + limit]
        return {
            "query": query, "offset": offset, "limit": limit,
            "hits": [{"rank": offset + i + 1, "product_id": h.product_id, "score": round(h.score, 4),
                      "confidence": None if confidence is None else round(confidence[offset + i], 4), "payload": h.payload}
                     for i, h in enumerate(shown)],
            "confidence_note": note,
            "retrieval": retrieval,
            "fusion": fusion.describe() if fusion is not None else None,
            "feedback": len(feedback or ()),
            "boost": {key: weight for key, weight, _ in boosted.weights} if boosted else None,
            "rules_fired": [f.summary() for f in fired],
            "took_ms": round((time.perf_counter() - began) * 1000, 2),
        }

    def _embed(self, query: str) -> np.ndarray:
        """The query's dense embedding (one row), for the dense leg."""
        with self._dense_lock:  # one encode at a time on the model
            return self.dense.encode([query])

    def _boostable(self) -> dict[str, str] | None:
        """The payload fields' kinds for checking a boost (an index built before they were recorded: its keys, as
        numbers; neither recorded: None, anything goes to the engine)."""
        if self.payload_types is not None:
            return self.payload_types
        return None if self.payload_keys is None else {key: "number" for key in self.payload_keys}

    def _check_filter_keys(self, parsed) -> None:
        """A filter key that no product has is refused (it would silently match nothing), naming the known keys."""
        known = self.payload_keys
        if known is None:  # an index built before its payload keys were recorded: nothing to check against
            return
        for condition in (*parsed.must, *parsed.must_not):
            root = payload_key_root(condition.key)
            if root not in known and condition.key not in known:
                shown = ", ".join(sorted(known)[:30]) or "none"
                raise SparsefitError(f"no product has the payload key {condition.key!r}",
                                     hint=f"filter on one of: {shown}")

    def _confidence_note(self, *, filtered: bool, other: bool = False) -> str | None:
        """Why the hits carry no confidence (None when they do)."""
        if self.confidence is None:
            return self.confidence_problem or "no confidence model: run `sparsefit calibrate RUN`"
        if other:
            return "confidence is calibrated on the model's own scores; it does not apply to BM25, hybrid, feedback or boosted scores"
        if filtered:
            return "confidence is calibrated on unfiltered results; it does not apply to filtered or rule-cut lists"
        return None

    def _confidence(self, scores: list[float]) -> list[float] | None:
        if self.confidence is None or not scores:
            return None
        return [float(p) for p in self.confidence.predict(hit_features(np.array(scores)))]

    def product(self, product_id: str) -> dict[str, Any] | None:
        with self._index_lock:
            found = self.index.retrieve([product_id])[0]
        return None if found is None else {"product_id": product_id, "payload": found}

    # -- explain --------------------------------------------------------------------------
    def explain(self, query: str, product_id: str, *, top_k: int = 20) -> dict[str, Any]:
        """Term weights of the query and the product under the tuned and the base model, and the shared terms."""
        query = _check_query(query)
        catalog = self.catalog()
        if product_id not in catalog:
            raise KeyError(product_id)
        text = catalog.texts[catalog.position(product_id)]
        out: dict[str, Any] = {"query": query, "product_id": product_id, "product_text": text, "models": {}}
        if getattr(self.encoder, "architecture", None) == "minicoil":  # per shared word: BM25's parts and the sense match
            with self._encode_lock:
                words = [w.to_json() for w in self.encoder.explain(query, text)]
            out["models"]["minicoil"] = {"model_type": "minicoil", "score": round(sum(w["score"] for w in words), 6),
                                         "shared_words": words}
            return out
        for name, encoder in (("tuned", self.encoder), ("base", self.base_encoder())):
            with self._encode_lock:
                q = encoder.encode_queries([query])
                d = encoder.encode_documents([text])
            out["models"][name] = _explain_pair(encoder, q, d, query, text, top_k)
        return out

    def base_encoder(self):
        """The untuned base model, loaded once however many requests ask for it at the same time."""
        from sparsefit.models import load_encoder

        with self._base_lock:
            if self._base is None:
                self._base = load_encoder(self.settings.base_model, max_seq_length=self.settings.max_seq_length,
                                          architecture=self.settings.architecture, device=self.encoder.device)
            return self._base

    def catalog(self):
        """The run's catalog (for product texts), loaded once."""
        from sparsefit.data import load_catalog
        from sparsefit.pipeline import catalog_options

        with self._catalog_lock:
            if self._catalog is None:
                from sparsefit.data.benchmark_formats import catalog_file

                path = catalog_file(Path(RunFolder(self.folder).read_sources()["catalog"]))  # (a BEIR folder: its corpus)
                if not path.is_file():
                    raise SparsefitError("the run's catalog file is gone", file=path,
                                         hint="put the catalog back where it was trained from to explain results")
                self._catalog = load_catalog(path, **catalog_options(self.settings))
            return self._catalog

    # -- rules ----------------------------------------------------------------------------
    def add_rule(self, when: str, exclude: str, **options: Any) -> ExclusionRule:
        return self.rules.add(ExclusionRule.new(when, exclude, **options))

    def remove_rule(self, rule_id: str) -> ExclusionRule:
        return self.rules.remove(rule_id)

    # -- confidence -----------------------------------------------------------------------
    def fit_confidence(self, depth: int = 10) -> ConfidenceModel:
        """Fit the confidence model on the run's held-out queries (top ``depth`` hits each) and save it."""
        from sparsefit.evaluation.confidence import fit_on_held_out

        return fit_on_held_out(self.encoder, self.index, self.held_out(), self.folder, depth=depth,
                               encode_lock=self._encode_lock, index_lock=self._index_lock)

    def held_out(self):
        """The run's held-out judgments (its split's test queries)."""
        from sparsefit.pipeline import load_inputs

        run = RunFolder(self.folder)
        paths = run.read_sources()
        judgments = paths["judgments"] or str(run.queries)
        inputs = load_inputs(paths["catalog"], judgments, self.settings, self.folder)
        self._catalog = inputs.catalog
        return inputs.judgments.subset(set(inputs.split.test))


class QueryBatcher:
    """Encodes queries that arrive together as one batch: under load, one forward pass serves many requests.

    A request waits for no timer: the worker takes whatever is queued the moment it is free, so a lone
    query is encoded at once and concurrent ones share the next pass.
    """

    def __init__(self, encoder, lock: threading.Lock, max_batch: int = 64) -> None:
        import queue

        self.encoder, self.lock, self.max_batch = encoder, lock, max_batch
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="sparsefit-query-batcher", daemon=True)
        self.thread.start()

    def encode(self, text: str) -> sp.csr_matrix:
        from concurrent.futures import Future

        future: Future = Future()
        self.queue.put((text, future))
        return future.result()

    def stop(self) -> None:
        self.queue.put(None)

    def _work(self) -> None:
        import queue

        while True:
            item = self.queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.queue.put(None)
                    break
                batch.append(more)
            try:
                with self.lock:
                    vectors = self.encoder.encode_queries([text for text, _ in batch])
                for i, (_, future) in enumerate(batch):
                    future.set_result(vectors[i])
            except BaseException as exc:  # hand the error to every waiting request
                for _, future in batch:
                    future.set_exception(exc)


def _load_run_dense(index, settings, device: str) -> tuple[Any, str | None]:
    """The dense model the index was built with, and None; or None and why it cannot serve (it could not be
    loaded here, or its size is not the index's): the run is then served without the dense modes."""
    from sparsefit.models.dense import load_dense

    name, size = index.get_metadata().get("dense_model"), index.dense_size
    if not name or not size:
        return None, None
    try:
        dense = load_dense(name, device=device, max_seq_length=settings.max_seq_length)
    except SparsefitError as exc:
        return None, str(exc)
    if dense.size != size:
        return None, f"{name} gives {dense.size}-d vectors, the index holds {size}-d ones"
    return dense, None


def _retrieval_settings(folder: Path, index) -> tuple:
    """The index's BM25 model (None without BM25 vectors), the run's fitted fusions (model + BM25, and model + BM25
    + dense) and feedback coefficients (defaults where the run fitted none)."""
    from sparsefit.files import read_json
    from sparsefit.index import FeedbackStrategy, Fusion
    from sparsefit.indexing import index_bm25

    run = RunFolder(folder)
    fitted = read_json(run.fusion) if run.fusion.is_file() else {}
    fusion = Fusion.from_json(fitted["tuned"]) if "tuned" in fitted else Fusion()
    three_way = Fusion.from_json(fitted["tuned+dense"]) if "tuned+dense" in fitted else Fusion(weights=(1.0, 1.0, 1.0))
    strategy = FeedbackStrategy()
    if run.feedback.is_file():
        strategy = FeedbackStrategy.from_json(read_json(run.feedback)["strategy"])
    return index_bm25(index), fusion, three_way, strategy


def payload_key_root(key: str) -> str:
    """The payload key a filter path starts with: ``"price.usd"`` → price, ``brand[]`` → brand, and a quoted
    first segment (how Qdrant names keys with spaces or dots) unquoted: ``'"in stock".x'`` → in stock.

    Example:
        >>> payload_key_root('"in stock"'), payload_key_root("specs.color"), payload_key_root("tags[0]")
        ('in stock', 'specs', 'tags')
    """
    if key.startswith('"'):
        end = key.find('"', 1)
        return key[1:end] if end > 0 else key
    return key.split(".", 1)[0].split("[", 1)[0]


def _check_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise SparsefitError("the query is empty", hint='send a query text, e.g. {"query": "cordless drill"}')
    if len(query) > 1000:
        raise SparsefitError(f"the query is {len(query)} characters long", hint="send at most 1000 characters")
    return query.strip()


def _explain_pair(encoder, q: sp.csr_matrix, d: sp.csr_matrix, query: str, text: str, top_k: int) -> dict[str, Any]:
    vocab = encoder.vocab
    q_tokens = set(encoder.tokenizer(query, add_special_tokens=False)["input_ids"])
    d_tokens = set(encoder.tokenizer(text, add_special_tokens=False, truncation=True, max_length=512)["input_ids"])

    def terms(v: sp.csr_matrix, own: set[int]) -> dict[str, Any]:
        order = np.argsort(-v.data, kind="stable")
        listed = [{"term": vocab[v.indices[i]], "weight": round(float(v.data[i]), 4), "in_text": int(v.indices[i]) in own}
                  for i in order]
        return {"terms": listed[:top_k], "expansion": [t for t in listed if not t["in_text"]][:top_k], "nnz": int(v.nnz)}

    shared = q.multiply(d).tocsr()
    score = float(shared.sum())
    qd, dd = dict(zip(q.indices.tolist(), q.data.tolist())), dict(zip(d.indices.tolist(), d.data.tolist()))
    order = np.argsort(-shared.data, kind="stable")
    contributions = [{"term": vocab[shared.indices[i]], "query_weight": round(qd[shared.indices[i]], 4),
                      "product_weight": round(dd[shared.indices[i]], 4), "contribution": round(float(shared.data[i]), 4),
                      "share": round(float(shared.data[i]) / score, 4) if score > 0 else 0.0}
                     for i in order[:top_k]]
    return {"score": round(score, 4), "query": terms(q, q_tokens), "product": terms(d, d_tokens), "shared_terms": contributions}
