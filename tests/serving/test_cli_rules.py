"""`sparsefit rules` and `sparsefit calibrate` on a finished (tiny) run."""

from __future__ import annotations

import json

import pytest

from sparsefit.cli import main
from tests.conftest import EXAMPLES


def _run(argv, capsys) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_rules_add_list_remove(tiny_run, capsys):
    code, out = _run(["rules", "add", str(tiny_run), "cordless drill", "paint roller", "--when-threshold", "0.4"], capsys)
    assert code == 0 and "Added rule" in out
    rule_id = out.split("Added rule ")[1].split(":")[0]
    meta = json.loads((tiny_run / "index" / "sparsefit_meta.json").read_text())
    assert [r["id"] for r in meta["exclusion_rules"]] == [rule_id] and meta["exclusion_rules"][0]["when_threshold"] == 0.4
    code, out = _run(["rules", "list", str(tiny_run)], capsys)
    assert code == 0 and rule_id in out and "paint roller" in out
    code, out = _run(["rules", "add", str(tiny_run), "cordless drill", "paint roller"], capsys)
    assert code == 2 and "exists already" in out
    code, out = _run(["rules", "remove", str(tiny_run), rule_id], capsys)
    assert code == 0 and "Removed rule" in out
    code, out = _run(["rules", "remove", str(tiny_run), rule_id], capsys)
    assert code == 2 and "no rule with id" in out and "Traceback" not in out


def test_calibrate_prints_the_calibration_error(tiny_run, capsys):
    code, out = _run(["calibrate", str(tiny_run)], capsys)
    if code == 0:
        assert "ECE" in out and (tiny_run / "confidence.json").is_file()
    else:  # the tiny model may rank no relevant product in any top 10: a clear one-line reason
        assert code == 2 and "cannot fit confidence" in out


@pytest.mark.parametrize("argv, fragment", [
    (["rules", "add", "{run}", "", "paint"], "two non-empty"),
    (["rules", "add", "{run}", "drill", "paint", "--exclude-ratio", "3"], "exclude_ratio"),
])
def test_bad_rules_on_the_command_line(tiny_run, capsys, argv, fragment):
    code, out = _run([a.replace("{run}", str(tiny_run)) for a in argv], capsys)
    assert code == 2 and fragment in out


def test_search_is_the_served_search_with_exclusion_rules(tiny_run, tmp_path, capsys):
    import shutil

    import pandas as pd

    run = tmp_path / "run"  # a copy: the rule added here must not reach the other tests
    shutil.copytree(tiny_run, run)
    catalog = pd.read_csv(EXAMPLES / "catalog.csv", dtype=str).set_index("sku")

    def search() -> tuple[list[str], list[dict]]:
        code, out = _run(["search", str(run), "cordless drill", "--limit", "1000", "--json"], capsys)
        assert code == 0, out
        result = json.loads(out)
        return [hit["product_id"] for hit in result["hits"]], result["rules_fired"]

    code, table = _run(["search", str(run), "cordless drill", "--limit", "3"], capsys)  # the table, for people
    assert code == 0 and "top 3" in table and "exclusion rule" not in table
    before, fired = search()  # every product that matches
    assert len(before) > 3 and fired == [] and set(before) <= set(catalog.index)
    code, added = _run(["rules", "add", str(run), "cordless drill", catalog.loc[before[0], "title"], "--when-threshold", "0.01",
                        "--exclude-limit", "1"], capsys)
    assert code == 0 and "Added rule" in added, added
    after, fired = search()
    assert [f["excluded_products"] for f in fired] == [1]
    code, table = _run(["search", str(run), "cordless drill", "--limit", "3"], capsys)
    assert code == 0 and "exclusion rule" in table and "1 products left out" in table
    assert set(after) < set(before) and len(after) == len(before) - 1  # the one product near the rule's anchor is left out


def test_a_run_trained_for_two_stage_search_serves_it(tiny_model, tmp_path, capsys):
    from sparsefit.index import open_index
    from sparsefit.models import load_encoder

    run = tmp_path / "run"
    code, out = _run(["train", str(EXAMPLES / "catalog.csv"), "--judgments", str(EXAMPLES / "judged_queries.csv"),
                      "--base-model", str(tiny_model), "--rounds", "1", "--search-posting-cap", "5", "-o", str(run)], capsys)
    assert code == 0 and "Searched two-stage (approximate)" in out, out
    code, out = _run(["search", str(run), "cordless drill", "--limit", "10", "--json"], capsys)
    assert code == 0, out
    served = [hit["product_id"] for hit in json.loads(out)["hits"]]
    query = load_encoder(str(run / "model")).encode_queries(["cordless drill"])
    with open_index(path=run / "index") as index:
        assert index.two_stage is not None and index.two_stage.posting_cap == 5 and index.two_stage.thresholds
        assert served == [h.product_id for h in index.search(query, limit=10)]
        exact = [h.product_id for h in index.search(query, limit=10, exact=True)]
    assert len(served) == 10 and served != exact  # 5 postings per term: the candidate stage decides
