"""Qdrant's BM25 against bm25s, and fusion weights fitted on validation queries, on the demo catalog."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sparsefit.data import load_catalog, load_judgments, split_queries
from sparsefit.errors import SparsefitError
from sparsefit.evaluation.evaluate import evaluate_bm25
from sparsefit.evaluation.hybrid import RRF_K, evaluate_hybrid, evaluate_qdrant_bm25, fit_fusion
from sparsefit.index import IndexLocation
from sparsefit.indexing import catalog_index
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def demo():
    catalog = load_catalog(EXAMPLES / "catalog.csv")
    judgments = load_judgments(EXAMPLES / "judged_queries.csv", catalog)
    return catalog, judgments, split_queries(judgments, test_fraction=0.3, seed=13)


@pytest.fixture(scope="module")
def base_index(demo, splade_tiny_reused, tmp_path_factory):
    catalog, _, _ = demo
    index, _ = catalog_index(splade_tiny_reused, catalog, IndexLocation(path=tmp_path_factory.mktemp("i") / "index"),
                             show_progress=False)
    yield index
    index.close()


def test_qdrants_bm25_ranks_close_to_bm25s(demo, base_index) -> None:
    """Two BM25s with other tokenizers (Qdrant: stemming, its stopwords; bm25s: neither stemming nor the same
    stopwords) and the same k1 = 1.5, b = 0.75. Measured on the demo's 140 queries: nDCG@10 0.776 (bm25s) and
    0.798 (Qdrant), 80% of the top 10 shared. The tolerance: within 0.05 nDCG@10, at least 70% shared."""
    catalog, judgments, _ = demo
    every = judgments.subset(judgments.keys_with_relevant())
    ours, theirs = evaluate_qdrant_bm25(base_index, every), evaluate_bm25(catalog, every)
    assert len(every.keys()) == 140
    assert abs(ours.mean["ndcg@10"] - theirs.mean["ndcg@10"]) <= 0.05
    shared = [len({d for d, _ in ours.run[k][:10]} & {d for d, _ in theirs.run[k][:10]}) / min(10, len(theirs.run[k]))
              for k in every.keys() if theirs.run[k]]
    assert np.mean(shared) >= 0.7


@pytest.mark.parametrize("method", ["rrf", "dbsf", "formula"])
def test_fusion_is_fitted_on_the_validation_queries_and_never_below_its_better_leg_there(demo, base_index, splade_tiny_reused,
                                                                                       method) -> None:
    _, judgments, split = demo
    validation = judgments.subset(set(split.train) & judgments.keys_with_relevant())
    fusion = fit_fusion(splade_tiny_reused, base_index, validation, method=method)
    grid = fusion.fitted["grid"]
    assert fusion.fitted["queries"] == len(validation.keys()) > 50
    assert fusion.fitted["score"] == max(g["ndcg@10"] for g in grid)
    if method == "rrf":
        assert len(grid) == len(RRF_K) * 13 and {tuple(g["weights"]) for g in grid} >= {(1.0, 0.0), (0.0, 1.0)}
    elif method == "formula":
        assert len(grid) == 11 and all(s > 0 for s in fusion.scales)
        assert {tuple(g["weights"]) for g in grid} >= {(1.0, 0.0), (0.0, 1.0)}
    else:
        assert len(grid) == 1
    # The chosen fusion, on the same validation queries, scores what the fit says it does.
    again = evaluate_hybrid(splade_tiny_reused, base_index, validation, fusion, name="hybrid")
    assert again.mean["ndcg@10"] == pytest.approx(fusion.fitted["score"], abs=1e-6)


def test_hybrid_of_the_base_model_beats_it_on_held_out_queries(demo, base_index, splade_tiny_reused) -> None:
    """The known finding, on the demo: BM25 and the untuned model find different things, so fusing them helps."""
    from sparsefit.evaluation.evaluate import evaluate_encoder

    _, judgments, split = demo
    validation = judgments.subset(set(split.train) & judgments.keys_with_relevant())
    test = judgments.subset(set(split.test))
    fusion = fit_fusion(splade_tiny_reused, base_index, validation)
    hybrid = evaluate_hybrid(splade_tiny_reused, base_index, test, fusion, name="hybrid")
    alone = evaluate_encoder(splade_tiny_reused, base_index, test)
    assert hybrid.mean["ndcg@10"] > alone.mean["ndcg@10"]


def test_no_validation_queries_or_no_bm25_vectors_are_clear_errors(demo, splade_tiny_reused, tmp_path) -> None:
    _, judgments, _ = demo
    with pytest.raises(SparsefitError, match="no validation queries"):
        fit_fusion(splade_tiny_reused, None, judgments.subset(set()))
    index = IndexLocation(path=tmp_path / "plain").open(bm25=False)
    index.upsert(["a"], sp.csr_matrix([[1.0]]))
    with pytest.raises(SparsefitError, match="no BM25 vectors"):
        evaluate_qdrant_bm25(index, judgments)
    index.close()


def test_simulated_feedback_with_c_0_is_the_search_without_it(demo, base_index, splade_tiny_reused) -> None:
    from sparsefit.evaluation.feedback import simulate_feedback
    from sparsefit.index import FeedbackStrategy

    _, judgments, _ = demo
    every = judgments.subset(judgments.keys_with_relevant())  # the demo's queries with a relevant product left after page 1
    result = simulate_feedback(splade_tiny_reused, base_index, every, FeedbackStrategy(c=0.0))
    assert result["queries"] > 10
    assert result["per_query"]["with"] == result["per_query"]["without"]  # query by query
    assert result["paired_test"]["p_value"] == 1.0


def test_feedback_coefficient_is_fitted_on_validation_queries_and_moves_results(demo, base_index, splade_tiny_reused) -> None:
    from sparsefit.evaluation.feedback import C_GRID, fit_feedback, simulate_feedback

    _, judgments, split = demo
    validation = judgments.subset(set(split.train) & judgments.keys_with_relevant())
    strategy = fit_feedback(splade_tiny_reused, base_index, validation)
    grid = strategy.fitted["grid"]
    assert [g["c"] for g in grid] == list(C_GRID) and strategy.fitted["queries"] == len(validation.keys())
    assert strategy.fitted["score"] == max(g["ndcg@10"] for g in grid) >= grid[0]["ndcg@10"]  # c = 0 is a candidate
    # One round of clicks on the first page changes what comes next (a strong c reorders the unseen results).
    from sparsefit.index import FeedbackStrategy

    every = judgments.subset(judgments.keys_with_relevant())
    strong = simulate_feedback(splade_tiny_reused, base_index, every, FeedbackStrategy(c=1.0))
    assert strong["with_pairs"] >= 2  # the demo is easy: few queries mix clicks and skips on page 1 and have more to find
    assert strong["per_query"]["with"] != strong["per_query"]["without"]


def test_a_dense_model_gets_its_own_row_and_a_three_way_hybrid(demo, tmp_path) -> None:
    """--dense minilm-l6 on the demo: the dense model alone, and the model + BM25 + dense fused in Qdrant with three
    fitted weights, beside the two-way hybrid; the index holds the dense vectors (384-d, cosine)."""
    from sparsefit.evaluation.evaluate import evaluate

    catalog, judgments, split = demo
    report = evaluate(catalog, judgments, split, models=["splade-tiny"], retrieval="hybrid", dense="minilm-l6",
                      location=IndexLocation(path=tmp_path / "indexes"), show_progress=False)
    names = [s.name for s in report.systems]
    assert names == ["bm25", "bm25 (Qdrant)", "dense (minilm-l6)", "splade-tiny", "hybrid (splade-tiny)",
                     "hybrid (splade-tiny + dense)"]
    assert [s.kind for s in report.systems][-2:] == ["hybrid", "hybrid-dense"]
    assert report.mean("dense (minilm-l6)")["ndcg@10"] > 0.5  # an untuned general model still finds the demo's products
    index = IndexLocation(path=tmp_path / "indexes" / "splade-tiny").open(create=False)
    assert index.dense_size == 384 and index.get_metadata()["dense_model"] == "minilm-l6"
    index.close()
