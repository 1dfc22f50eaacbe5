"""`sparsefit explain RUN QUERY PRODUCT_ID`: the explanation of /explain on the command line."""

from __future__ import annotations

import json

import pytest

from sparsefit.models import load_encoder
from sparsefit.run import RunFolder
from tests.helpers import run_cli

PRODUCT = "PT-0005"


def test_explain_json_gives_scores_that_are_the_dot_products_of_the_two_vectors(tiny_run, capsys):
    code, out, err = run_cli(capsys, "explain", tiny_run, "cordless drill", PRODUCT, "--json", "--top", "200")
    assert code == 0, err
    result = json.loads(out)
    assert result["product_id"] == PRODUCT and set(result["models"]) == {"tuned", "base"}
    tuned = load_encoder(str(RunFolder(tiny_run).model))
    want = float(tuned.encode_queries(["cordless drill"]).multiply(tuned.encode_documents([result["product_text"]])).sum())
    model = result["models"]["tuned"]
    assert model["score"] == pytest.approx(want, abs=1e-3)
    assert sum(t["contribution"] for t in model["shared_terms"]) == pytest.approx(want, abs=1e-2)  # all listed
    assert all(t["query_weight"] > 0 and t["product_weight"] > 0 for t in model["shared_terms"])
    assert all(not t["in_text"] for t in model["query"]["expansion"])


def test_explain_prints_both_models_shared_terms_and_expansions(tiny_run, capsys):
    code, out, err = run_cli(capsys, "explain", tiny_run, "cordless drill", PRODUCT)
    assert code == 0, err
    assert "tuned model: score" in out and "base model: score" in out
    assert "tuned expansions: query (" in out and "base expansions: query (" in out


@pytest.mark.parametrize("argv, fragment", [
    (["cordless drill", "NOPE-1"], "no product with id 'NOPE-1' in the run's catalog"),
    (["", PRODUCT], "query is empty"),
    (["drill", PRODUCT, "--top", "0"], "--top"),
])
def test_explain_bad_input_is_one_line_and_exit_2(tiny_run, capsys, argv, fragment):
    code, out, err = run_cli(capsys, "explain", tiny_run, *argv)
    assert code == 2 and fragment in err and "Traceback" not in out + err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
