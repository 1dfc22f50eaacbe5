"""A fast CPU encoding path for plain SPLADE models (BERT-style MLM + max pooling).

sentence-transformers computes log(1 + ReLU(logits)) over the whole padded batch × tokens ×
vocabulary tensor and then max-pools it. Because log1p∘ReLU is monotonic, max-pooling the raw
logits first and applying log1p∘ReLU to the pooled (batch × vocabulary) result gives the same
vectors with far less memory traffic. We also drop padding tokens before the vocabulary projection
(the dominant cost) and project one cache-sized block of the vocabulary at a time. In training, the
backward pass goes only through the (token, term) pairs that won the max and are active after
ReLU (:class:`MaxProjection`), instead of the dense tokens × vocabulary logits.

On CPUs with bfloat16 matrix units (AMX or AVX512-BF16) encoding screens the vocabulary in bfloat16
first and recomputes in float32 only the (text, term) pairs that a proven error bound cannot rule
out (:func:`screened_pairs`): the vectors are the float32 ones, at the bfloat16 speed.

The reference path stays available (``Encoder(..., fast=False)``) and tests check that both give
the same vectors.

Example:
    >>> from sparsefit.models import load_encoder
    >>> enc = load_encoder("splade-tiny")
    >>> FastSplade.supports(enc.model)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from sparsefit.defaults import ENCODE_BATCH_SIZE
from sparsefit.devices import bfloat16_is_fast

VOCAB_BLOCK = 1024  # vocabulary columns projected at once: the logits block stays in cache (~2x GEMM rate)
# A bfloat16 dot product with float32 accumulation and a bfloat16 result is within 3 roundings of
# 2**-8 (plus K * 2**-24 for the sum) of sum |h_i w_i| <= |h| |w| of the exact one; 2**-6 bounds that.
SCREEN_SLACK = 2.0**-6
# bfloat16 matrix multiplies go through oneDNN, which builds a kernel for each new shape (2-8 ms here,
# more than the multiply): the screen pads its token rows to a multiple of this, so a few dozen shapes
# recur instead of a new one for nearly every batch.
SCREEN_ROWS = 64
# Max pooling takes one reduction call per run of equal-length sequences (~30 us each here, most of it
# call overhead), and a training batch has a few dozen lengths. Runs are merged where one more call
# costs more than projecting this many extra token rows (a 1024-term block costs ~0.4 us per row).
RUN_MERGE_ROWS = 128


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
        self.screen = bfloat16_is_fast()  # same vectors either way; tests run both
        self._low: tuple[tuple[int, int], torch.Tensor, torch.Tensor] | None = None

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
    def encode(self, texts: Sequence[str], batch_size: int = ENCODE_BATCH_SIZE) -> sp.csr_matrix:
        """CSR vectors for ``texts`` in input order."""
        texts = list(texts)
        vocab = self.weight.shape[0]
        if not texts:
            return sp.csr_matrix((0, vocab), dtype=np.float32)
        encoded = token_ids(self.tokenizer, texts, self.max_length)
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        rows, cols, vals = [], [], []
        for start in range(0, len(texts), batch_size):
            picked = order[start : start + batch_size]
            seq, term, values = self._pairs([encoded[i] for i in picked])  # max logits, before log1p∘ReLU
            kept = values > 0  # ReLU keeps only these
            rows.append(picked[seq[kept].numpy()])
            cols.append(term[kept].numpy())
            vals.append(torch.log1p(values[kept]).numpy())  # the activation on the few kept values only
        matrix = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), vocab), dtype=np.float32
        )
        matrix.sort_indices()
        return matrix

    def _pairs(self, batch: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sequence, term, max logit before log1p∘ReLU) for every pair whose max may be positive.

        Through the bfloat16 screen only the pairs it cannot rule out are computed (never a dense
        batch × vocabulary result); without it, every pair of the pooled logits.
        """
        input_ids, attention = padded_batch(batch, self.tokenizer.pad_token_id or 0)
        width = input_ids.shape[1]
        tokens, positions, order = _real_tokens(self.encoder, self.transform, input_ids, attention)
        if self.screen:
            seq, term, values, _ = screened_pairs(tokens, self.weight, self.bias, positions, len(batch), width, self._low_weight())
        else:
            pooled = blocked_max_projection(tokens, self.weight, self.bias, positions, len(batch), width)
            seq, term = sparse_nonzero(pooled > 0)
            values = pooled[seq, term]
        return (seq if order is None else order[seq]), term, values

    def _low_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The projection weight in bfloat16 and its rows' norms, redone when training has changed it."""
        key = (self.weight.data_ptr(), self.weight._version)
        if self._low is None or self._low[0] != key:
            self._low = (key, *low_precision_weight(self.weight))
        return self._low[1], self._low[2]


def token_ids(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids with special tokens, truncated; straight from the Rust tokenizer when there is one (faster)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    ids = [e.ids for e in backend.encode_batch(texts, add_special_tokens=True)]
    if any(len(i) > max_length for i in ids):  # truncate like transformers: keep the head, end with [SEP]
        return tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]
    return ids


def padded_batch(ids: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the right to the longest (with ``pad_id``), and the attention mask."""
    lengths = torch.tensor([len(row) for row in ids])
    input_ids = torch.full((len(ids), int(lengths.max())), pad_id, dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
    return input_ids, (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()


def _real_tokens(encoder, transform, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The real (non-padding) tokens' vectors before the vocabulary projection, sequence by sequence in
    length order; each one's slot in the (batch × width) grid; and that order (None: the batch's own)."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.bool()
    order = _length_order(mask)
    if order is not None:  # pool sequences of one length together; the encoder above saw the batch as given
        hidden, mask = hidden[order], mask[order]
    tokens = transform(hidden[mask])  # (real tokens, hidden): padding is never projected
    positions = mask.view(-1).nonzero().squeeze(1)  # each real token's slot in the (batch × width) grid
    return tokens, positions, order


def _length_order(mask: torch.Tensor) -> torch.Tensor | None:
    """The sequences' order by length, or None when they are in length order already (as when encoding).

    A training batch comes in any order. Pooled in length order, sequences of one length are projected
    and max-pooled together: a few dozen runs per batch instead of about one per sequence.
    """
    lengths = mask.sum(dim=1)
    steps = lengths[1:] - lengths[:-1]
    if bool((steps >= 0).all()) or bool((steps <= 0).all()):
        return None
    return torch.argsort(lengths, stable=True)


def low_precision_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` in bfloat16 and the float32 norms of its rows: what :func:`screened_pairs` needs."""
    weight = weight.detach()
    return weight.to(torch.bfloat16), weight.norm(dim=1)


def blocked_max_projection(
    tokens: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    positions: torch.Tensor,
    batch: int,
    width: int,
    row_multiple: int = 1,
    on_block: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """``max_t (tokens @ weight.T + bias)`` per sequence, one vocabulary block at a time.

    ``positions[i]`` is token i's slot in the (batch × width) grid. Returns the pooled
    (batch × vocabulary) maxima. Nothing of size tokens × vocabulary is ever held: each block of
    logits stays in cache. Sequences are pooled run by run (:func:`_pooling_runs`); the projected
    rows are padded with zero rows to a multiple of ``row_multiple``. ``on_block(start, stop, pooled)``
    is called with each block's pooled columns while they are still in cache.
    """
    vocab = weight.shape[0]
    pooled = torch.empty((batch, vocab), dtype=tokens.dtype)
    rows, runs = _pooling_runs(positions, batch, width)
    if rows is not None:
        tokens = tokens.index_select(0, rows)
    extra = -len(tokens) % row_multiple
    if extra:
        tokens = torch.cat([tokens, tokens.new_zeros((extra, tokens.shape[1]))])
    for start in range(0, vocab, VOCAB_BLOCK):
        stop = min(start + VOCAB_BLOCK, vocab)
        logits = torch.nn.functional.linear(tokens, weight[start:stop], None if bias is None else bias[start:stop])
        for first_seq, last_seq, first_tok, length in runs:  # a view per run of equal-length sequences: no copies
            n = last_seq - first_seq
            values = logits[first_tok : first_tok + n * length].view(n, length, stop - start)
            if values.dtype == torch.bfloat16:
                bfloat16_max(values, out=pooled[first_seq:last_seq, start:stop])
            else:
                torch.amax(values, dim=1, out=pooled[first_seq:last_seq, start:stop])
        if on_block is not None:
            on_block(start, stop, pooled[:, start:stop])
    return pooled


def bfloat16_max(values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = values.amax(dim=1)`` for bfloat16, exactly, from integer max and min of the bit patterns.

    PyTorch's bfloat16 ``amax`` converts every element to float32; integer reductions run ~7x faster
    here. A bfloat16's bits read as an int16 order non-negative values correctly and negative ones in
    reverse, so the max is the largest pattern when that is non-negative, else (all values negative)
    the smallest pattern (the value nearest zero).

    Example:
        >>> import torch
        >>> v = torch.tensor([[[-3.0, 2.0, -0.5], [-1.0, -4.0, -0.25]]]).bfloat16()
        >>> bfloat16_max(v, torch.empty(1, 3, dtype=torch.bfloat16)).tolist()
        [[-1.0, 2.0, -0.25]]
    """
    bits = values.view(torch.int16)
    high, low = torch.amax(bits, dim=1), torch.amin(bits, dim=1)
    negative = high >> 15  # -1 (all bits set) where every value is negative, else 0
    out.view(torch.int16).copy_((high & ~negative) | (low & negative))
    return out


def screened_pairs(tokens, weight, bias, positions, batch: int, width: int, low: tuple[torch.Tensor, torch.Tensor]):
    """The (sequence, term) pairs that the bfloat16 screen cannot rule out, grouped by sequence; their
    exact float32 maxima (bias included; ≤ 0 for some), and the token reaching each: every positive
    maximum of :func:`blocked_max_projection` is among them.

    The bfloat16 maxima are within ``SCREEN_SLACK * |h| * |w|`` of the float32 ones (h the sequence's
    longest token vector, w the term's weight row). Every (sequence, term) pair whose bound can reach
    above zero is recomputed in float32; the rest are provably ≤ 0 and so 0 after ReLU. The arguments
    are :func:`blocked_max_projection`'s, with ``low = (weight_low, weight_norm)``, the weight in
    bfloat16 and its rows' norms (:func:`low_precision_weight`).
    """
    weight_low, weight_norm = low
    token_seq = torch.div(positions, width, rounding_mode="floor")
    slack = torch.zeros(batch).scatter_reduce_(0, token_seq, tokens.norm(dim=1), "amax").mul_(SCREEN_SLACK)  # per sequence
    screened = torch.empty((batch, weight.shape[0]), dtype=torch.bool)

    def screen(start: int, stop: int, approx: torch.Tensor) -> None:  # one block, while it is in cache
        bound = approx.float().addcmul_(slack[:, None], weight_norm[None, start:stop])
        if bias is not None:
            bound += bias[start:stop]
        torch.gt(bound, 0, out=screened[:, start:stop])

    # ~3x the float32 rate; zero rows after the last token give fewer distinct matrix shapes (see SCREEN_ROWS)
    blocked_max_projection(tokens.to(torch.bfloat16), weight_low, None, positions, batch, width, SCREEN_ROWS, on_block=screen)
    seq, term = sparse_nonzero(screened)  # row-major: grouped by sequence
    values, winners = _sequence_term_max(tokens, weight, token_seq, seq, term, batch)
    return seq, term, (values if bias is None else values + bias[term]), winners


def sparse_nonzero(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.nonzero(mask, as_tuple=True)`` for a mostly-False 2-D bool tensor, several times faster.

    PyTorch's nonzero walks every element (~6 ms for a 128 × 30,522 mask here); this first finds the
    8-element words that hold any True, then looks inside those only. Same indices, same row-major order.

    Example:
        >>> mask = torch.zeros(3, 5, dtype=torch.bool)
        >>> mask[0, 4] = mask[2, 1] = mask[2, 3] = True
        >>> [t.tolist() for t in sparse_nonzero(mask)]
        [[0, 2, 2], [4, 1, 3]]
    """
    columns = mask.shape[1]
    flat = mask.reshape(-1)
    if flat.storage_offset() % 8:  # 8 bools are read as one int64: they must be aligned
        flat = flat.clone()
    whole = flat.numel() - flat.numel() % 8
    words = torch.nonzero(flat[:whole].view(torch.int64)).squeeze(1)  # words with any True
    word, byte = torch.nonzero(flat[:whole].view(-1, 8)[words], as_tuple=True)
    index = words[word] * 8 + byte
    if whole < flat.numel():
        index = torch.cat([index, torch.nonzero(flat[whole:]).squeeze(1) + whole])
    return torch.div(index, columns, rounding_mode="floor"), index % columns


def _pooling_runs(positions: torch.Tensor, batch: int, width: int) -> tuple[torch.Tensor | None, list[tuple[int, int, int, int]]]:
    """The token rows to project and the runs of sequences to max-pool together over them.

    Consecutive runs of equal-length sequences (:func:`_equal_length_runs`) are merged where that is
    cheaper (:data:`RUN_MERGE_ROWS`, :func:`_merged_runs`). In a merged run each shorter sequence is
    padded by repeating its last token, which leaves every max unchanged. Returns ``(rows, runs)``:
    ``rows`` picks the projected matrix's rows from the tokens (None: the tokens as they are), and
    ``runs`` are (first sequence, end sequence, first row, length) over that matrix.

    Example:
        >>> positions = torch.tensor([0, 1, 3, 4, 5])  # width 3: sequences of 2 and 3 tokens
        >>> rows, runs = _pooling_runs(positions, 2, 3)
        >>> rows.tolist(), runs
        ([0, 1, 1, 2, 3, 4], [(0, 2, 0, 3)])
    """
    sequence_lengths = torch.bincount(torch.div(positions, width, rounding_mode="floor"), minlength=batch).tolist()
    runs = _equal_length_runs(sequence_lengths)
    groups = _merged_runs(runs)
    if len(groups) == len(runs):
        return None, runs
    lengths = torch.tensor(sequence_lengths)
    padded = torch.tensor([max(run[3] for run in runs[a:b]) for a, b in groups for run in runs[a:b] for _ in range(run[1] - run[0])])
    ends = torch.cumsum(padded, 0)
    sequence = torch.repeat_interleave(torch.arange(batch), padded)  # each projected row's sequence
    offset = torch.arange(int(ends[-1])) - (ends - padded)[sequence]  # and its place in that sequence
    first_token = torch.cumsum(lengths, 0) - lengths
    rows = first_token[sequence] + torch.minimum(offset, lengths[sequence] - 1)
    merged, row = [], 0
    for a, b in groups:
        first_seq, end_seq, length = runs[a][0], runs[b - 1][1], max(run[3] for run in runs[a:b])
        merged.append((first_seq, end_seq, row, length))
        row += (end_seq - first_seq) * length
    return rows, merged


def _merged_runs(runs: list[tuple[int, int, int, int]]) -> list[tuple[int, int]]:
    """The cheapest grouping of consecutive runs, as (first run, end run): each group costs one reduction
    call (:data:`RUN_MERGE_ROWS` rows) plus its sequences × its longest length rows."""
    best = [0.0] + [float("inf")] * len(runs)
    first = [0] * (len(runs) + 1)
    for end in range(1, len(runs) + 1):
        sequences = longest = 0
        for start in range(end - 1, -1, -1):
            first_seq, end_seq, _, length = runs[start]
            sequences, longest = sequences + end_seq - first_seq, max(longest, length)
            cost = best[start] + RUN_MERGE_ROWS + sequences * longest
            if cost < best[end]:
                best[end], first[end] = cost, start
    groups, end = [], len(runs)
    while end > 0:
        groups.append((first[end], end))
        end = first[end]
    return groups[::-1]


def _equal_length_runs(lengths: list[int]) -> list[tuple[int, int, int, int]]:
    """(first sequence, end sequence, first token, length) for each run of consecutive sequences of one length.

    Tokens are sequence-major (the sequences' ``lengths`` in order), so a run's tokens form one
    contiguous (sequences × length) block of the token matrix.
    """
    batch = len(lengths)
    runs, seq, tok = [], 0, 0
    while seq < batch:
        end = seq
        while end < batch and lengths[end] == lengths[seq]:
            end += 1
        if lengths[seq] == 0:
            raise ValueError("every sequence needs at least one token")
        runs.append((seq, end, tok, lengths[seq]))
        tok += (end - seq) * lengths[seq]
        seq = end
    return runs


class MaxProjection(torch.autograd.Function):
    """SPLADE's vocabulary projection, max pooling and log1p∘ReLU, with a sparse backward pass.

    After max pooling, each (sequence, term) value comes from one token, and log1p∘ReLU passes a
    gradient only where the pooled value is positive (the few dozen terms of a sparse vector). So
    the forward pass keeps just those (sequence, term) pairs, their maxima and winning tokens, and
    the backward pass touches nothing else: no dense tokens × vocabulary logits, and no dense
    batch × vocabulary activation or its gradient. The gradients are autograd's through the dense
    path (``log1p``'s is ``grad / (x + 1)``, ReLU's passes where ``x > 0``).

    ``order`` (optional) says which sequence of the batch each pooled sequence is (the tokens come in
    length order, :func:`_length_order`); the result's rows are then in batch order.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, tokens, weight, bias, positions, batch, width, low=None, order=None):
        tokens_, weight_, bias_ = tokens.detach(), weight.detach(), None if bias is None else bias.detach()
        if low is not None and tokens.dtype == torch.float32:  # under bfloat16 autocast, the screen is moot
            seq, term, values, token = screened_pairs(tokens_, weight_, bias_, positions, batch, width, low)
        else:
            pooled = blocked_max_projection(tokens_, weight_, bias_, positions, batch, width)
            seq, term = sparse_nonzero(pooled > 0)  # row-major: grouped by sequence
            values = pooled[seq, term]
            _, token = _sequence_term_max(tokens_, weight_, torch.div(positions, width, rounding_mode="floor"), seq, term, batch)
        active = values > 0  # ReLU: only these carry a value and a gradient
        seq, term, values, token = seq[active], term[active], values[active], token[active]
        activated = torch.log1p(values)
        result = torch.zeros((batch, weight.shape[0]), dtype=activated.dtype)
        rows = seq if order is None else order[seq]
        result[rows, term] = activated
        ctx.save_for_backward(tokens, weight, rows, term, values, token)
        ctx.has_bias = bias is not None
        return result

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_result):
        tokens, weight, rows, term, values, token = ctx.saved_tensors
        grad = grad_result[rows, term] / (values + 1)  # log1p's gradient; ReLU passes it, as every value is > 0
        grad_tokens = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_tokens = torch.zeros_like(tokens).index_add_(0, token, (grad[:, None] * weight[term]).to(tokens.dtype))
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight).index_add_(0, term, (grad[:, None] * tokens[token]).to(weight.dtype))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = torch.zeros(weight.shape[0], dtype=weight.dtype).index_add_(0, term, grad.to(weight.dtype))
        return grad_tokens, grad_weight, grad_bias, None, None, None, None, None


def _sequence_term_max(tokens, weight, token_seq, seq, term, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (seq, term) pair (grouped by seq): the max over the sequence's tokens of ``token @ weight[term]``
    (no bias: it is the same for every token of a term) and the index of the token that reaches it."""
    token_bounds = torch.cumsum(torch.bincount(token_seq, minlength=batch), 0).tolist()
    pair_bounds = torch.cumsum(torch.bincount(seq, minlength=batch), 0).tolist()
    values = torch.empty(len(seq), dtype=tokens.dtype)
    winners = torch.empty_like(seq)
    first_token = first_pair = 0
    for b in range(batch):
        if pair_bounds[b] > first_pair:
            terms = term[first_pair : pair_bounds[b]]
            scores = tokens[first_token : token_bounds[b]] @ weight[terms].T  # (sequence tokens, its active terms)
            best = scores.max(dim=0)
            values[first_pair : pair_bounds[b]] = best.values
            winners[first_pair : pair_bounds[b]] = first_token + best.indices
        first_token, first_pair = token_bounds[b], pair_bounds[b]
    return values, winners


def splade_pool_unpadded(mlm, input_ids: torch.Tensor, attention_mask: torch.Tensor, screen: bool = False) -> torch.Tensor:
    """Differentiable SPLADE max pooling that projects only real (non-padding) tokens onto the vocabulary.

    Same values and gradients as sentence-transformers' padded path (max before log1p∘ReLU is exact
    because the activation is monotonic), computed block by block with a sparse backward pass
    (:class:`MaxProjection`), through the bfloat16 screen when ``screen``.
    """
    decoder = mlm.cls.predictions.decoder
    bias = decoder.bias if decoder.bias is not None else mlm.cls.predictions.bias
    low = low_precision_weight(decoder.weight) if screen else None
    tokens, positions, order = _real_tokens(mlm.bert, mlm.cls.predictions.transform, input_ids, attention_mask)
    batch, width = attention_mask.shape
    return MaxProjection.apply(tokens, decoder.weight, bias, positions, batch, width, low, order)
