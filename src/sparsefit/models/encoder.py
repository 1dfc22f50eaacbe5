"""Sparse encoders: build a SPLADE or inference-free SPLADE model from a base model and encode text.

Queries always go through the query path (``encode_query``) and products through the document path
(``encode_document``): for inference-free SPLADE the two differ (a static per-token weight for
queries, the full MLM model for documents).

Example:
    >>> from sparsefit import load_encoder
    >>> enc = load_encoder("splade-tiny")
    >>> vecs = enc.encode_documents(["cordless drill 20v"])
    >>> vecs.shape[1] == enc.vocab_size
    True
    >>> [term for term, _ in enc.decode(vecs[0], top_k=3)]  # doctest: +SKIP
    ['drill', 'cordless', '20']
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.errors import SparsefitError
from sparsefit.models.aliases import ALIASES
from sparsefit.models.fast import FastSplade
from sparsefit.progress import quiet_libraries
from sparsefit.threads import apply_threads

Architecture = Literal["splade", "inference-free"]
ARCHITECTURES: tuple[str, ...] = ("splade", "inference-free")
ACCELERATOR_BATCH_SIZE = 256  # encoding batch on a GPU: texts are short, the GPU wants many at once
LEXICAL_HEAD_BIAS = -6.0  # decoder bias of a freshly tied MLM head: keeps the start sparse


class Encoder:
    """A SPLADE-family sparse encoder over a WordPiece vocabulary.

    Wraps a sentence-transformers ``SparseEncoder`` (``self.model``), so it trains with
    sentence-transformers losses and saves as a folder that ``SparseEncoder(path)`` loads.
    """

    modifier: Literal["idf"] | None = None  # what the index applies to its vectors: nothing (miniCOIL's is "idf")

    def __init__(self, model, name: str, architecture: Architecture = "splade", *, fast: bool = True) -> None:
        self.model = model
        self.name = name
        self.architecture = architecture
        self.fast = fast
        self._vocab: list[str] | None = None
        self._fast_paths: dict[str, FastSplade | None] = {}

    # -- device ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The torch device the weights are on (``cpu``, ``cuda:0``, ``mps``)."""
        return str(self.model.device)

    def to(self, device: str) -> Encoder:
        """Move the weights to ``device`` (a resolved one: see :func:`sparsefit.devices.resolve_device`)."""
        self.model.to(device)
        self._fast_paths.clear()
        return self

    # -- encoding -------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Dimensions of the sparse vectors: the MLM vocabulary."""
        config = self._transformer_config()
        return int(config.vocab_size) if config is not None else int(self.model.get_embedding_dimension())

    @property
    def hidden_size(self) -> int:
        """Width of the transformer's token vectors (128 for splade-tiny, 384 for minilm-l6)."""
        config = self._transformer_config()
        if config is None or not hasattr(config, "hidden_size"):
            raise SparsefitError(f"{self.name} has no transformer with a hidden size", hint="use a BERT-style base model")
        return int(config.hidden_size)

    def _transformer_config(self):
        """The Hugging Face config of the first transformer in the model, or None."""
        for module in self.model.modules():
            config = getattr(getattr(module, "auto_model", None), "config", None)
            if config is not None:
                return config
        return None

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def vocab(self) -> list[str]:
        """Token strings by vocabulary index."""
        if self._vocab is None:
            by_index = sorted(self.tokenizer.get_vocab().items(), key=lambda item: item[1])
            self._vocab = [token for token, _ in by_index]
        return self._vocab

    def encode_queries(
        self, texts: Sequence[str], *, batch_size: int = ENCODE_BATCH_SIZE, progress: Callable[[int], None] | None = None
    ) -> sp.csr_matrix:
        """Encode search queries through the query path; one CSR row per text."""
        return self._encode(texts, "query", batch_size, progress)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = ENCODE_BATCH_SIZE, progress: Callable[[int], None] | None = None
    ) -> sp.csr_matrix:
        """Encode products through the document path; one CSR row per text."""
        return self._encode(texts, "document", batch_size, progress)

    def _encode(
        self,
        texts: Sequence[str],
        route: Literal["query", "document"],
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> sp.csr_matrix:
        texts = list(texts)
        self.model.eval()
        on_cpu = self.model.device.type == "cpu"
        # The fast kernels are proven equal to sentence-transformers' path on the CPU only; a GPU takes big batches.
        fast = self._fast_path(route) if self.fast and on_cpu else None
        if not on_cpu:
            batch_size = max(batch_size, ACCELERATOR_BATCH_SIZE)
        if fast is not None:
            with torch.inference_mode():
                vectors = fast.encode(texts, batch_size)
            if progress:
                progress(len(texts))
            return vectors
        encode = self.model.encode_query if route == "query" else self.model.encode_document
        chunk = max(batch_size * 16, batch_size)
        # Sort by length so that chunks hold texts of similar length (less padding), then restore order.
        order = np.argsort([len(t) for t in texts], kind="stable")
        parts: list[sp.csr_matrix] = []
        with torch.inference_mode():
            for start in range(0, len(texts), chunk):
                batch = [texts[i] for i in order[start : start + chunk]]
                encoded = encode(batch, batch_size=batch_size, convert_to_sparse_tensor=True, show_progress_bar=False)
                parts.append(_to_csr(encoded))
                if progress:
                    progress(len(batch))
        if not parts:
            return sp.csr_matrix((0, self.vocab_size), dtype=np.float32)
        stacked = sp.vstack(parts, format="csr")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return stacked[inverse]

    def _fast_path(self, route: str) -> FastSplade | None:
        """The fast encoder for a route when its modules are plain SPLADE (no prompts), else None."""
        if route not in self._fast_paths:
            modules = list(self.model)
            if len(modules) == 1 and hasattr(modules[0], "sub_modules"):  # a query/document Router
                modules = list(modules[0].sub_modules[route]) if route in modules[0].sub_modules else []
            prompts = any(getattr(self.model, "prompts", {}).values())
            self._fast_paths[route] = FastSplade(modules) if not prompts and FastSplade.supports(modules) else None
        return self._fast_paths[route]

    # -- inspection -----------------------------------------------------------------------
    def decode(self, vector: sp.spmatrix | np.ndarray, top_k: int | None = 10) -> list[tuple[str, float]]:
        """The highest-weighted vocabulary terms of one vector, as (term, weight), best first."""
        row = sp.csr_matrix(vector)
        if row.shape[0] != 1:
            raise SparsefitError(f"decode takes one vector, got {row.shape[0]} rows")
        order = np.argsort(-row.data, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        vocab = self.vocab
        return [(vocab[row.indices[i]], float(row.data[i])) for i in order]

    def fingerprint(self) -> str:
        """A short hash of the weights: equal fingerprints mean identical vectors."""
        digest = hashlib.sha256(self.architecture.encode())
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Save as a sentence-transformers SparseEncoder folder (loads with ``SparseEncoder(path)``)."""
        from sparsefit.files import atomic_folder

        path = Path(path)
        with atomic_folder(path) as temporary, quiet_libraries():  # never a half-saved model where one is loaded
            self.model.save(str(temporary))
            (temporary / "sparsefit.json").write_text(json.dumps({"name": self.name, "architecture": self.architecture}))
        return path

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, architecture={self.architecture!r}, vocab_size={self.vocab_size})"


def _to_csr(tensor: torch.Tensor) -> sp.csr_matrix:
    """Turn a (batch, vocab) torch tensor, sparse COO or dense, into CSR with only non-zero weights."""
    if tensor.is_sparse:
        tensor = tensor.coalesce()
        rows, cols = tensor.indices().cpu().numpy()
        values = tensor.values().detach().to(torch.float32).cpu().numpy()
        keep = values != 0
        return sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=tuple(tensor.shape))
    return sp.csr_matrix(tensor.detach().to(torch.float32).cpu().numpy())


def average_encoders(folders: Sequence[str | Path], *, max_seq_length: int = 128, name: str | None = None) -> Encoder:
    """The uniform average of the weights of saved encoders with the same architecture (a "model soup").

    Fine-tuning rounds that start from one another sit in one basin of the loss; their average is
    usually at least as good as the best of them and less tied to the last round's data.

    Example:
        >>> soup = average_encoders(["runs/x/rounds/0/model", "runs/x/rounds/1/model"])   # doctest: +SKIP
        >>> soup.save("runs/x/average/model")                                             # doctest: +SKIP
    """
    if not folders:
        raise ValueError("average_encoders needs at least one model folder")
    first = load_encoder(str(folders[0]), max_seq_length=max_seq_length)
    state = first.model.state_dict()
    total = {k: v.detach().clone().to(torch.float64) for k, v in state.items() if v.is_floating_point()}
    for folder in folders[1:]:
        weights = load_encoder(str(folder), max_seq_length=max_seq_length).model.state_dict()
        if weights.keys() != state.keys() or any(weights[k].shape != v.shape for k, v in state.items()):
            raise SparsefitError(f"cannot average {folder} with {folders[0]}: they are different architectures",
                                 hint="average only rounds of one run (models fine-tuned from the same base)")
        for key in total:
            total[key] += weights[key].to(torch.float64)
    first.model.load_state_dict({k: (total[k] / len(folders)).to(v.dtype) if k in total else v for k, v in state.items()})
    first.name = name or f"average of {len(folders)} models"
    return first


# -- building ----------------------------------------------------------------------------
# One model load at a time in the process: ten parallel first /explain calls once left every later
# load failing ("Cannot copy out of meta tensor") until the service restarted.
_LOADING = threading.RLock()


def load_encoder(
    name_or_path: str | Path = "splade-tiny",
    *,
    architecture: Architecture = "splade",
    max_seq_length: int = 128,
    threads: int | None = None,
    device: str | None = None,
) -> Encoder:
    """Load a base model as a sparse encoder (on ``device``, a resolved torch device; default the CPU).

    ``name_or_path`` is an offline alias (``splade-tiny``, ``minilm-l6``), a local folder (a saved
    SparseEncoder, a masked-LM checkpoint, or a plain BERT-style encoder that gets a tied MLM head),
    or a model-hub id (needs network access).

    Example:
        >>> enc = load_encoder("splade-tiny")
        >>> enc.encode_queries(["angle bracket"]).shape
        (1, 30522)
    """
    with _LOADING:  # transformers' loading is not thread-safe (concurrent loads broke on meta tensors)
        encoder = _load_encoder(name_or_path, architecture=architecture, max_seq_length=max_seq_length, threads=threads)
    return encoder.to(device) if device and device != "cpu" else encoder


def _load_encoder(name_or_path: str | Path, *, architecture: Architecture, max_seq_length: int,
                  threads: int | None) -> Encoder:
    if architecture not in ARCHITECTURES:
        raise SparsefitError(
            f"unknown architecture '{architecture}'", hint=f"use one of: {', '.join(ARCHITECTURES)}"
        )
    apply_threads(threads)  # as SPARSEFIT_THREADS does: torch and the tokenizers' pool
    name = str(name_or_path)
    alias = ALIASES.get(name)
    if alias is not None:
        folder = alias.folder()
        modules = _splade_modules(folder, max_seq_length, tie_head=not alias.has_mlm_head)
    else:
        folder = Path(name).expanduser()
        if folder.exists():
            from sparsefit.minicoil.store import is_minicoil

            if is_minicoil(folder):  # the other model family: same encode/decode interface, IDF from the index
                from sparsefit.minicoil import load_minicoil

                return load_minicoil(folder)
            saved = _load_saved(folder, name)
            if saved is not None:
                return saved
            modules = _splade_modules(folder, max_seq_length, tie_head=not _has_mlm_head(folder))
        else:
            return _load_from_hub(name, architecture, max_seq_length)
    return _assemble(modules, name, architecture)


def _assemble(modules: list, name: str, architecture: Architecture) -> Encoder:
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import Router, SparseStaticEmbedding

    if architecture == "inference-free":
        transformer = modules[0]
        static = SparseStaticEmbedding(tokenizer=transformer.tokenizer, frozen=False)
        modules = [Router.for_query_document(query_modules=[static], document_modules=modules)]
    model = SparseEncoder(modules=modules, device="cpu")
    return Encoder(model, name=name, architecture=architecture)


def _splade_modules(folder: Path, max_seq_length: int, *, tie_head: bool) -> list:
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

    _check_model_folder(folder)
    with quiet_libraries():
        transformer = Transformer(str(folder), transformer_task="fill-mask", max_seq_length=max_seq_length)
    if tie_head:
        init_lexical_head(transformer.auto_model, transformer.tokenizer)
    return [transformer, SpladePooling(pooling_strategy="max")]


def _check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise SparsefitError("model path is not a folder", file=folder, hint="pass a model folder or an alias")
    missing = [f for f in ("config.json",) if not (folder / f).is_file()]
    has_weights = any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin"))
    has_tokenizer = any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt"))
    if missing or not has_weights or not has_tokenizer:
        lacking = missing + ([] if has_weights else ["model.safetensors"]) + ([] if has_tokenizer else ["tokenizer.json"])
        raise SparsefitError(
            f"model folder is missing {', '.join(lacking)}",
            file=folder,
            hint="copy the complete model folder (config, weights and tokenizer files)",
        )


def _has_mlm_head(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SparsefitError(f"cannot read config.json ({exc})", file=folder / "config.json") from None
    return any("MaskedLM" in arch for arch in config.get("architectures") or [])


def _load_saved(folder: Path, name: str) -> Encoder | None:
    """A folder written by ``Encoder.save`` or sentence-transformers; None if it is a raw checkpoint."""
    if not (folder / "modules.json").is_file():
        return None
    from sentence_transformers import SparseEncoder

    meta_file = folder / "sparsefit.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    try:
        with quiet_libraries():
            model = SparseEncoder(str(folder), device="cpu")
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise SparsefitError(
            f"cannot load the saved model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            file=folder,
            hint="the folder may be incomplete or corrupted: re-export it or point at another round",
        ) from None
    architecture = meta.get("architecture") or ("inference-free" if _is_router(model) else "splade")
    return Encoder(model, name=meta.get("name", name), architecture=architecture)


def _is_router(model) -> bool:
    from sentence_transformers.sparse_encoder.modules import Router

    return any(isinstance(module, Router) for module in model.modules())


def _load_from_hub(name: str, architecture: Architecture, max_seq_length: int) -> Encoder:
    try:
        modules = _splade_modules_from_hub(name, max_seq_length)
    except SparsefitError:
        raise
    except Exception as exc:  # network, auth, missing repo: all end in the same advice
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise SparsefitError(
            f"cannot load model '{name}': it is not an alias ({', '.join(ALIASES)}), not a local folder, "
            f"and the model hub did not provide it ({type(exc).__name__}{', HF_HUB_OFFLINE=1' if offline else ''})",
            hint="use an offline alias such as splade-tiny, or download the model to a folder and pass its path",
        ) from None
    return _assemble(modules, name, architecture)


def _splade_modules_from_hub(name: str, max_seq_length: int) -> list:
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(name))
    saved = _load_saved(folder, name)
    if saved is not None:
        return list(saved.model)
    return _splade_modules(folder, max_seq_length, tie_head=not _has_mlm_head(folder))


def init_lexical_head(mlm_model: torch.nn.Module, tokenizer) -> None:
    """Initialise a fresh MLM head so the model starts sparse and lexical, not as dense noise.

    Transform dense = identity, LayerNorm = (1, 0), decoder tied to the input embeddings, decoder
    bias = -6, and special / ``[unused]`` tokens masked off. A token then scores high where the
    contextual state stays close to its own input embedding.
    """
    head = getattr(mlm_model, "cls", None)
    if head is None or not hasattr(head, "predictions"):
        raise SparsefitError(
            f"cannot attach a lexical MLM head to {type(mlm_model).__name__}",
            hint="use a BERT-style model or one that already has a masked-LM head",
        )
    predictions = head.predictions
    embeddings = mlm_model.get_input_embeddings()
    with torch.no_grad():
        dense = predictions.transform.dense
        dense.weight.copy_(torch.eye(dense.weight.shape[0], dense.weight.shape[1]))
        dense.bias.zero_()
        predictions.transform.LayerNorm.weight.fill_(1.0)
        predictions.transform.LayerNorm.bias.zero_()
        predictions.decoder.weight = embeddings.weight
        bias = torch.full((embeddings.weight.shape[0],), LEXICAL_HEAD_BIAS)
        bias[_bracketed_token_ids(tokenizer)] = -1e4
        predictions.bias = torch.nn.Parameter(bias)
        predictions.decoder.bias = predictions.bias
    mlm_model.config.tie_word_embeddings = True


def _bracketed_token_ids(tokenizer) -> list[int]:
    """Special tokens and placeholder slots (``[PAD]``, ``[CLS]``, ``[unused7]``...) of a vocabulary."""
    return sorted(i for token, i in tokenizer.get_vocab().items() if token.startswith("[") and token.endswith("]"))
