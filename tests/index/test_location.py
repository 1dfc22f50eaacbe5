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


def test_settings_pass_sharding_replication_and_on_disk_to_the_server_location(tmp_path):
    settings = Settings(qdrant_url="http://q:6333", collection="shop", qdrant_shards=6, qdrant_replicas=2,
                        qdrant_write_consistency=2, qdrant_on_disk=True)
    server = index_location(settings, Path("unused"))
    assert (server.shards, server.replicas, server.write_consistency, server.on_disk) == (6, 2, 2, True)
    child = server.child("base")  # evaluate's per-model collections are sharded alike
    assert (child.collection, child.shards, child.replicas, child.write_consistency, child.on_disk) == ("shop-base", 6, 2, 2, True)
    edge = index_location(Settings(qdrant_on_disk=True), tmp_path / "index")
    assert edge.on_disk and (edge.shards, edge.replicas, edge.write_consistency) == (None, None, None)
    plain = index_location(Settings(qdrant_url="http://q:6333"), Path("unused"))
    assert (plain.shards, plain.replicas, plain.write_consistency, plain.on_disk) == (None, None, None, False)


def test_how_an_index_is_stored_does_not_rebuild_it(splade_tiny, tmp_path):
    """On-disk storage (and sharding, on a server) say where an index lives, not what is in it: not in its fingerprint."""
    from sparsefit.data import load_catalog
    from sparsefit.indexing import catalog_index
    from tests.conftest import EXAMPLES

    catalog = load_catalog(EXAMPLES / "catalog.csv")
    seconds: dict[str, float] = {}
    index, _ = catalog_index(splade_tiny, catalog, IndexLocation(path=tmp_path / "index"), seconds=seconds,
                             show_progress=False)
    built = index.get_metadata()
    index.close()
    assert seconds["encode"] > 0
    seconds = {}
    index, _ = catalog_index(splade_tiny, catalog, IndexLocation(path=tmp_path / "index", on_disk=True),
                             seconds=seconds, show_progress=False)
    with index:
        assert seconds["encode"] == 0.0 and index.get_metadata() == built  # reopened as it was
