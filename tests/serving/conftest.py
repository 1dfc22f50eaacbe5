"""A finished tiny training run on the demo catalog, shared by the serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsefit.config import load_settings
from sparsefit.pipeline import finetune

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def tiny_run(tiny_model, tmp_path_factory) -> Path:
    """A one-round run of the tiny BERT on the demo catalog and judgments (a few seconds)."""
    settings = load_settings(base_model=str(tiny_model), rounds=1, train_batch_size=16, learning_rate=1e-3,
                             output=tmp_path_factory.mktemp("serving") / "run")
    return finetune(EXAMPLES / "catalog.csv", EXAMPLES / "judged_queries.csv", settings, show_progress=False)


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects by marker
def pytest_collection_modifyitems(config, items) -> None:
    """The schema fuzz (test_fuzz.py: over a thousand requests through two app instances) belongs to the slow
    tier; its marker is set here, beside the module, which is maintained on its own."""
    for item in items:
        if item.path.name == "test_fuzz.py" and item.path.parent == Path(__file__).parent:
            item.add_marker(pytest.mark.slow)
