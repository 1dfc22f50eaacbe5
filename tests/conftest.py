"""Shared fixtures: offline settings, the real SPLADE-tiny model loaded once, paths to shared data."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One torch/OpenMP thread per test process unless the caller sets another number: the models here are tiny, and
# where the cores are busy (a training job beside the tests) torch's threads otherwise wait on each other: the
# encoding tests then ran 5-10x slower. Child processes (CLI, studio jobs) inherit it. Must precede `import torch`.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
HOMEDEPOT = REPO.parent / "shared" / "data" / "homedepot"


@pytest.fixture(scope="session")
def splade_tiny_reused():
    """The real 4.4M-parameter SPLADE-tiny base model, loaded once per session. Tests take ``splade_tiny``
    (a copy of it) so that one that changes the model's weights or settings cannot change another's."""
    from sparsefit.models import load_encoder

    return load_encoder("splade-tiny")


@pytest.fixture(scope="session")
def splade_tiny_inference_free_reused():
    """SPLADE-tiny with the inference-free query side (static query weights), loaded once per session."""
    from sparsefit.models import load_encoder

    return load_encoder("splade-tiny", architecture="inference-free")


@pytest.fixture
def splade_tiny(splade_tiny_reused):
    """A deep copy of the session's SPLADE-tiny for this test alone (a copy takes ~0.1 s, a load several)."""
    return copy.deepcopy(splade_tiny_reused)


@pytest.fixture
def splade_tiny_inference_free(splade_tiny_inference_free_reused):
    """A deep copy of the session's inference-free SPLADE-tiny for this test alone."""
    return copy.deepcopy(splade_tiny_inference_free_reused)


@pytest.fixture(scope="session")
def homedepot() -> Path:
    """The Home Depot relevance data in ../shared (never copied into the repo)."""
    if not (HOMEDEPOT / "products.csv").is_file():
        pytest.skip(f"{HOMEDEPOT} is not present")
    return HOMEDEPOT


def build_tiny_bert(folder: Path, *, dropout: float = 0.1) -> Path:
    """A tiny BERT (hidden 32, 2 layers) with a WordPiece vocabulary trained on the demo data, saved
    as a plain BertModel folder: sparsefit gives it a lexical MLM head. Builds in about a second.
    ``dropout=0`` makes training steps deterministic across process layouts (the distributed tests)."""
    import csv

    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    texts = [" ".join(row.values()) for row in csv.DictReader((EXAMPLES / "catalog.csv").open(encoding="utf-8"))]
    texts += [row["query"] for row in csv.DictReader((EXAMPLES / "judged_queries.csv").open(encoding="utf-8"))]
    folder.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=3000, min_frequency=1)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    import torch

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, initializer_range=0.5,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of a tiny BERT built in the test session (proves the pipeline runs, not quality)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
