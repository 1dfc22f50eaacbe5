"""Training patches for the fast SPLADE path: while :class:`FastTraining` is active a SparseEncoder
trains through :func:`~sparsefit.models.fast.splade_pool_unpadded` (unpadded, blocked, sparse
backward), its dropout draws masks with :func:`fast_dropout`, and its collator tokenizes through the
Rust tokenizer (:class:`FastPreprocess`). Nothing is patched outside the ``with`` block: parameters,
state dict and the saved model are untouched.

The encode kernels these use live in :mod:`sparsefit.models.fast`.
"""

from __future__ import annotations

import functools
import types

import torch

from sparsefit.devices import bfloat16_is_fast
from sparsefit.models.fast import FastSplade, padded_batch, splade_pool_unpadded, token_ids


class FastPreprocess:
    """A training data collator's ``preprocess_fn`` that tokenizes plain text straight through the Rust tokenizer.

    sentence-transformers' collator tokenizes every column of every batch through the transformers
    tokenizer call (~9 ms per 64 titles here); the Rust tokenizer gives the same ids in ~2.5 ms, and
    a training step tokenizes four columns. Only for models :class:`FastSplade` supports, text without
    a prompt or other options; anything else goes to ``preprocess``. The first batch of each task is
    compared with ``preprocess``, and a difference sends that task to ``preprocess`` for good.

    Example:
        >>> from sparsefit.models import load_encoder
        >>> model = load_encoder("splade-tiny").model
        >>> FastPreprocess(model, model.preprocess)(["drill", "garden hose"])["input_ids"].shape
        torch.Size([2, 4])
    """

    def __init__(self, model, preprocess) -> None:
        modules = list(model)
        self.transformer = modules[0] if FastSplade.supports(modules) else None
        self.preprocess = preprocess
        self.same: dict[str | None, bool] = {}  # per task: did the first batch match ``preprocess``

    def __call__(self, inputs, prompt=None, task=None, **kwargs):
        plain = self.transformer is not None and not prompt and not kwargs and all(isinstance(text, str) for text in inputs)
        if not plain or not inputs or self.same.get(task) is False:
            return self.preprocess(inputs, prompt=prompt, task=task, **kwargs)
        features = self._features(list(inputs))
        if task not in self.same:
            expected = self.preprocess(inputs, prompt=prompt, task=task)
            self.same[task] = _same_features(features, expected)
            return expected
        return features

    def _features(self, texts: list[str]) -> dict:
        tokenizer = self.transformer.tokenizer
        input_ids, attention = padded_batch(token_ids(tokenizer, texts, self.transformer.max_seq_length), tokenizer.pad_token_id or 0)
        features = {"input_ids": input_ids}
        if "token_type_ids" in tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        features["attention_mask"] = attention
        features["modality"] = "text"
        return features



def _same_features(features: dict, expected: dict) -> bool:
    if list(features) != list(expected):
        return False
    for key, value in features.items():
        other = expected[key]
        if isinstance(value, torch.Tensor) != isinstance(other, torch.Tensor):
            return False
        if isinstance(value, torch.Tensor) and (value.dtype != other.dtype or not torch.equal(value, other)):
            return False
        if not isinstance(value, torch.Tensor) and value != other:
            return False
    return True



def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout (in training) whose mask takes 15 random bits per element, four elements per 64-bit draw.

    PyTorch's CPU dropout draws one ``bernoulli_`` sample per element, serially: in a splade-tiny
    training step that took more time than all the transformer's matrix multiplies. Here an element is
    dropped with probability ``round(p * 2**15) / 2**15`` (within 2**-16 of ``p``) and the rest are
    scaled by ``1 / (1 - p)``, as in :func:`torch.nn.functional.dropout`; the gradient is the same mask.

    Example:
        >>> import torch
        >>> x = torch.ones(100_000)
        >>> y = fast_dropout(x, 0.1)
        >>> round(float((y == 0).float().mean()), 2), round(float(y.max()), 4), round(float(y.mean()), 1)
        (0.1, 1.1111, 1.0)
    """
    if p <= 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    count = x.numel()
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_()  # 63 random bits each: 4 lanes of 15
    keep = (words.view(torch.int16)[:count] & 0x7FFF) >= round(p * 32768)
    return x.mul(keep.view(x.shape)).mul_(1.0 / (1.0 - p))


def _dropout_forward(self, x: torch.Tensor) -> torch.Tensor:
    return fast_dropout(x, self.p) if self.training else x


FAST_DROPOUT_ATTENTION = "sparsefit_fast_dropout"


def _attention_with_fast_dropout(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' eager attention (additive mask), its dropout on the attention weights by :func:`fast_dropout`."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = fast_dropout(torch.softmax(weights, dim=-1), dropout if module.training else 0.0)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


@functools.cache
def _register_fast_dropout_attention() -> str | None:
    """Register the attention above with transformers; None where this transformers has no attention
    registry (it came in 4.48, the mask registry later): attention dropout then stays transformers' own."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:
        return None
    AttentionInterface.register(FAST_DROPOUT_ATTENTION, _attention_with_fast_dropout)
    AttentionMaskInterface.register(FAST_DROPOUT_ATTENTION, eager_mask)
    return FAST_DROPOUT_ATTENTION


class FastTraining:
    """Context manager: while active, SPLADE modules of ``model`` use :func:`splade_pool_unpadded`,
    and with ``dropout`` their dropout (hidden states and attention weights) uses :func:`fast_dropout`.

    Only the modules' ``forward`` is overridden on the instances for the duration (then removed), and the
    transformers' attention implementation is switched and restored, so parameters, state dict and the
    saved form are untouched.
    """

    def __init__(self, model, screen: bool | None = None, dropout: bool = True) -> None:
        self.model = model
        self.screen = bfloat16_is_fast() if screen is None else screen  # the bfloat16 screen in the forward pass
        self.dropout = dropout
        self.patched: list[torch.nn.Module] = []
        self.attention: list[tuple[object, str]] = []  # (config, its attention implementation before)

    def __enter__(self):
        forward = functools.partial(_fast_transformer_forward, screen=self.screen)
        for transformer, pooling in _splade_module_lists(self.model):
            transformer.forward = types.MethodType(forward, transformer)
            pooling.forward = types.MethodType(_pass_through, pooling)
            self.patched += [transformer, pooling]
            if self.dropout:
                self._fast_dropout(transformer.auto_model)
        return self

    def _fast_dropout(self, mlm) -> None:
        for module in mlm.modules():
            if type(module) is torch.nn.Dropout:
                module.forward = types.MethodType(_dropout_forward, module)
                self.patched.append(module)
        config = mlm.config
        current = getattr(config, "_attn_implementation", None)  # private in transformers: only where it exists
        if current in ("sdpa", "eager"):  # both take the additive mask path here
            registered = _register_fast_dropout_attention()
            if registered is not None:
                self.attention.append((config, current))
                config._attn_implementation = registered

    def __exit__(self, *exc):
        for module in self.patched:
            del module.forward
        self.patched.clear()
        for config, implementation in self.attention:
            config._attn_implementation = implementation
        self.attention.clear()


def _splade_module_lists(model) -> list[list]:
    modules = list(model)
    if len(modules) == 1 and hasattr(modules[0], "sub_modules"):
        return [list(m) for m in modules[0].sub_modules.values() if FastSplade.supports(list(m))]
    return [modules] if FastSplade.supports(modules) else []


def _fast_transformer_forward(self, features, screen: bool = False, **kwargs):
    features["sentence_embedding"] = splade_pool_unpadded(self.auto_model, features["input_ids"], features["attention_mask"], screen)
    return features


def _pass_through(self, features, **kwargs):
    return features
