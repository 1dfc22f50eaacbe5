"""IndexLocation: the one value for where an index lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparsefit.config import Settings
from sparsefit.errors import SparsefitError
from sparsefit.index import IndexLocation, TwoStage
from sparsefit.pipeline import index_location


def test_a_location_is_a_folder_or_a_url_never_both_nor_neither(tmp_path):
    with pytest.raises(SparsefitError, match="folder .* or a Qdrant server URL"):
        IndexLocation()
    with pytest.raises(SparsefitError, match="not both"):
        IndexLocation(path=tmp_path, url="http://localhost:6333")
    assert IndexLocation(path=str(tmp_path)).path == tmp_path  # strings become paths


def test_the_api_key_never_shows_in_its_text():
    location = IndexLocation(url="http://qdrant:6333", collection="shop", api_key="s3cret-key-0123456789")
    assert "s3cret" not in repr(location) and "s3cret" not in location.describe()
    assert location.child("base").api_key == "s3cret-key-0123456789"  # children reach the same server


def test_settings_choose_edge_in_the_run_folder_or_the_server_collection(tmp_path):
    edge = index_location(Settings(search_posting_cap=50), tmp_path / "index")
    assert edge.path == tmp_path / "index" and edge.url is None and edge.two_stage == TwoStage(50)
    server = index_location(Settings(qdrant_url="http://q:6333", collection="shop", qdrant_api_key="k" * 20), Path("unused"))
    assert (server.url, server.collection, server.api_key, server.path) == ("http://q:6333", "shop", "k" * 20, None)


def test_a_reopened_index_keeps_the_mode_it_was_built_with(tmp_path):
    tight = TwoStage(posting_cap=3, query_terms=2, candidates=5)
    built = IndexLocation(path=tmp_path / "idx", two_stage=tight)
    built.open(recreate=True).close()
    with IndexLocation(path=tmp_path / "idx").open(create=False) as index:
        assert index.two_stage == tight
    assert not IndexLocation(path=tmp_path / "missing").exists()
