"""A tiny sentence model and a synthetic two-sense catalog, both built in the session (no downloads)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

FRUIT = ["fresh", "organic", "juice", "pie", "orchard", "sweet", "crisp", "harvest", "cider", "basket", "tart", "jam"]
PHONE = ["iphone", "charger", "screen", "cable", "wireless", "battery", "usb", "protector", "smartphone", "headset",
         "bluetooth", "adapter"]
OTHER = ["hammer", "drill", "garden", "hose", "lamp", "desk", "paint", "brush", "ladder", "shelf", "mirror", "towel"]


def sense_texts(words: list[str], count: int, seed: int, *, with_apple: bool = True) -> list[str]:
    """``count`` titles of 3 words drawn from ``words`` (and "apple" at a random place)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        picked = rng.sample(words, 3)
        if with_apple:
            picked.insert(rng.randrange(4), "apple")
        texts.append(" ".join(picked))
    return texts


def synthetic_catalog() -> list[str]:
    """"apple" in 40 fruit and 40 phone titles, 40 titles of other things, and two rare words
    ("zebra", "foo") in fewer titles than any layer needs."""
    return (sense_texts(FRUIT, 40, 1) + sense_texts(PHONE, 40, 2) + sense_texts(OTHER, 40, 3, with_apple=False)
            + ["zebra lamp desk", "zebra zebra towel", "foo shelf"])


def build_tiny_sentence_model(folder: Path) -> Path:
    """A tiny BERT (hidden 32, 2 layers) with a WordPiece vocabulary of the synthetic catalog, saved as a
    sentence-transformers folder (mean pooling, normalised). Builds in about a second.

    Its word embeddings know the two topics, as a real model's do: the fruit words share one random
    direction, the phone words another (plus noise), every other token is random. "apple" has neither."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    raw = folder / "bert"
    raw.mkdir(parents=True, exist_ok=True)
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(synthetic_catalog() * 3, vocab_size=400, min_frequency=1)
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", do_lower_case=True)
    tokenizer.save_pretrained(str(raw))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    bert = BertModel(config)
    with torch.no_grad():
        table = bert.embeddings.word_embeddings.weight
        table.normal_(0.0, 1.0)
        for words in (FRUIT, PHONE):
            topic = torch.randn(config.hidden_size) * 1.5
            for word in words:
                ids = tokenizer(word, add_special_tokens=False)["input_ids"]
                table[ids] = topic + 0.5 * torch.randn(len(ids), config.hidden_size)
    bert.save_pretrained(str(raw))
    transformer = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(config.hidden_size, pooling_mode="mean"), Normalize()],
                                device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


@pytest.fixture(scope="session")
def tiny_sentence_model(tmp_path_factory) -> Path:
    return build_tiny_sentence_model(tmp_path_factory.mktemp("tiny-st"))


@pytest.fixture(scope="session")
def trained(tiny_sentence_model):
    """miniCOIL trained on the synthetic catalog with the tiny model in both roles (about a second)."""
    from sparsefit.minicoil import train_minicoil

    return train_minicoil(synthetic_catalog(), encoder=str(tiny_sentence_model),
                          sentence_model=str(tiny_sentence_model), min_contexts=5, max_contexts=60, k=1.2, b=0.75)
