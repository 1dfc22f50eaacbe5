"""A fast CPU encoding path for plain SPLADE models (BERT-style MLM + max pooling).

sentence-transformers computes log(1 + ReLU(logits)) over the whole padded batch × tokens ×
vocabulary tensor and then max-pools it. Because log1p∘ReLU is monotonic, max-pooling the raw
logits first and applying log1p∘ReLU to the pooled (batch × vocabulary) result gives the same
vectors with far less memory traffic. We also drop padding tokens before the vocabulary projection
(the dominant cost) and project in bounded chunks of tokens.

The reference path stays available (``Encoder(..., fast=False)``) and tests check that both give
the same vectors.

Example:
    >>> from sparsefit.models import load_encoder
    >>> enc = load_encoder("splade-tiny")
    >>> FastSplade.supports(enc.model)
    True
"""

from __future__ import annotations

import types
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

TOKENS_PER_CHUNK = 2048  # rows of the (tokens × vocabulary) logits block computed at once (~250 MB at 30k vocab)


class FastSplade:
    """Encodes with the weights of a ``[Transformer(fill-mask), SpladePooling(max, relu)]`` model."""

    def __init__(self, modules) -> None:
        transformer, pooling = list(modules)
        self.tokenizer = transformer.tokenizer
        self.max_length = transformer.max_seq_length
        mlm = transformer.auto_model
        self.encoder = mlm.bert
        self.transform = mlm.cls.predictions.transform
        decoder = mlm.cls.predictions.decoder
        self.weight = decoder.weight  # (vocab, hidden), tied to the input embeddings
        self.bias = decoder.bias if decoder.bias is not None else mlm.cls.predictions.bias

    @staticmethod
    def supports(modules) -> bool:
        """True when ``modules`` are exactly a BERT MLM transformer followed by SPLADE max/ReLU pooling."""
        from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

        modules = list(modules)
        if len(modules) != 2:
            return False
        transformer, pooling = modules
        return (
            isinstance(transformer, Transformer)
            and isinstance(pooling, SpladePooling)
            and pooling.pooling_strategy == "max"
            and pooling.activation_function == "relu"
            and getattr(transformer, "transformer_task", None) == "fill-mask"
            and hasattr(transformer.auto_model, "bert")
            and hasattr(getattr(transformer.auto_model, "cls", None), "predictions")
        )

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> sp.csr_matrix:
        """CSR vectors for ``texts`` in input order."""
        texts = list(texts)
        vocab = self.weight.shape[0]
        if not texts:
            return sp.csr_matrix((0, vocab), dtype=np.float32)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, add_special_tokens=True)["input_ids"]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        rows, cols, vals = [], [], []
        for start in range(0, len(texts), batch_size):
            picked = order[start : start + batch_size]
            pooled = self._pool([encoded[i] for i in picked])
            nz_rows, nz_cols = torch.nonzero(pooled, as_tuple=True)
            rows.append(picked[nz_rows.numpy()])
            cols.append(nz_cols.numpy())
            vals.append(pooled[nz_rows, nz_cols].numpy())
        matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), vocab), dtype=np.float32
        )
        matrix.sort_indices()
        return matrix

    def _pool(self, batch: list[list[int]]) -> torch.Tensor:
        lengths = torch.tensor([len(ids) for ids in batch])
        width = int(lengths.max())
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            input_ids[i, : len(ids)] = torch.tensor(ids)
        attention = (torch.arange(width)[None, :] < lengths[:, None]).long()
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention).last_hidden_state
        tokens = self.transform(hidden[attention.bool()])  # (real tokens, hidden): no padding projected
        pooled = torch.empty((len(batch), self.weight.shape[0]))
        # Sequences are whole inside a chunk: chunk boundaries fall between sequences.
        bounds = torch.cumsum(lengths, 0).tolist()
        first_seq, first_tok = 0, 0
        while first_seq < len(batch):
            last_seq = first_seq + 1
            while last_seq < len(batch) and bounds[last_seq] - first_tok <= TOKENS_PER_CHUNK:
                last_seq += 1
            stop_tok = bounds[last_seq - 1]
            logits = torch.nn.functional.linear(tokens[first_tok:stop_tok], self.weight, self.bias)
            _max_by_sequence(logits, lengths[first_seq:last_seq].tolist(), pooled[first_seq:last_seq])
            first_seq, first_tok = last_seq, stop_tok
        return torch.log1p(torch.relu_(pooled))


def _max_by_sequence(logits: torch.Tensor, lengths: list[int], out: torch.Tensor) -> None:
    """Max over each sequence's consecutive token rows; runs of equal length are reduced in one call."""
    seq = tok = 0
    while seq < len(lengths):
        run = seq
        while run < len(lengths) and lengths[run] == lengths[seq]:
            run += 1
        n, width = run - seq, lengths[seq]
        torch.amax(logits[tok : tok + n * width].view(n, width, -1), dim=1, out=out[seq:run])
        seq, tok = run, tok + n * width


def splade_pool_unpadded(mlm, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Differentiable SPLADE max pooling that projects only real (non-padding) tokens onto the vocabulary.

    Same values and gradients as sentence-transformers' padded path (max before log1p∘ReLU is exact
    because the activation is monotonic), with less projection work and less memory kept for backward.
    """
    hidden = mlm.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.bool()
    tokens = mlm.cls.predictions.transform(hidden[mask])
    decoder = mlm.cls.predictions.decoder
    bias = decoder.bias if decoder.bias is not None else mlm.cls.predictions.bias
    logits = torch.nn.functional.linear(tokens, decoder.weight, bias)
    pooled = torch.segment_reduce(logits, "max", lengths=mask.sum(dim=1), axis=0)
    return torch.log1p(torch.relu(pooled))


class fast_training:
    """Context manager: while active, SPLADE modules of ``model`` use :func:`splade_pool_unpadded`.

    Only the modules' ``forward`` is overridden on the instances for the duration (then removed), so
    parameters, state dict and the saved form are untouched.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.patched: list[torch.nn.Module] = []

    def __enter__(self):
        for transformer, pooling in _splade_module_lists(self.model):
            transformer.forward = types.MethodType(_fast_transformer_forward, transformer)
            pooling.forward = types.MethodType(_pass_through, pooling)
            self.patched += [transformer, pooling]
        return self

    def __exit__(self, *exc):
        for module in self.patched:
            del module.forward
        self.patched.clear()


def _splade_module_lists(model) -> list[list]:
    modules = list(model)
    if len(modules) == 1 and hasattr(modules[0], "sub_modules"):
        return [list(m) for m in modules[0].sub_modules.values() if FastSplade.supports(list(m))]
    return [modules] if FastSplade.supports(modules) else []


def _fast_transformer_forward(self, features, **kwargs):
    features["sentence_embedding"] = splade_pool_unpadded(self.auto_model, features["input_ids"], features["attention_mask"])
    return features


def _pass_through(self, features, **kwargs):
    return features
