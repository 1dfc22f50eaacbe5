"""Shared fixtures: offline settings, the real SPLADE-tiny model loaded once, paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
HOMEDEPOT = REPO.parent / "shared" / "data" / "homedepot"


@pytest.fixture(scope="session")
def splade_tiny():
    """The real 4.4M-parameter SPLADE-tiny base model, loaded once per session."""
    from sparsefit.models import load_encoder

    return load_encoder("splade-tiny")


@pytest.fixture(scope="session")
def homedepot() -> Path:
    """The Home Depot relevance data in ../shared (never copied into the repo)."""
    if not (HOMEDEPOT / "products.csv").is_file():
        pytest.skip(f"{HOMEDEPOT} is not present")
    return HOMEDEPOT
