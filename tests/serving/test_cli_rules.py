"""`sparsefit rules` and `sparsefit calibrate` on a finished (tiny) run."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.helpers import run_cli


def _run(argv, capsys) -> tuple[int, str]:
    """``sparsefit ARGV`` in this process: the exit code and stdout and stderr together."""
    code, out, err = run_cli(capsys, *argv)
    return code, out + err


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


def _judge_top_hits(tiny_run, tmp_path, ranks: int) -> tuple[Path, list[int]]:
    """A copy of the run whose judgments call the top ``ranks`` hits of every held-out query Exact (E), as the
    run's own model and index find them; the other judgments stay. Returns the copy and the labels the
    confidence fit must see: 1 for each of the top 10 hits per query that is judged E, else 0."""
    from sparsefit.index import open_index
    from sparsefit.models import load_encoder

    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    held_out = json.loads((run / "split.json").read_text())["test"]  # ESCI query keys are the query texts
    with open_index(path=run / "index", create=False) as index:
        found = index.search_batch(load_encoder(str(run / "model")).encode_queries(held_out), limit=11)
    top = {query: [hit.product_id for hit in hits[:10]] for query, hits in zip(held_out, found)}
    with (EXAMPLES / "judged_queries.csv").open(encoding="utf-8", newline="") as handle:
        labels = {(row["query"], row["sku"]): row["label"] for row in csv.DictReader(handle)}
    for query, ids in top.items():
        labels.update({(query, pid): "E" for pid in ids[:ranks]})
    judgments = tmp_path / "judgments.csv"
    with judgments.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query", "sku", "label"])
        writer.writerows([query, sku, label] for (query, sku), label in labels.items())
    sources = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**sources, "judgments": str(judgments)}))
    (run / "confidence.json").unlink(missing_ok=True)
    expected = [int(labels.get((query, pid)) == "E") for query in held_out for pid in top[query]]
    return run, expected


def test_calibrate_fits_on_the_held_out_hits_and_prints_the_calibration_error(tiny_run, tmp_path, capsys):
    """Each held-out query's top hit is judged relevant, so both classes are there and the fit must succeed."""
    run, labels = _judge_top_hits(tiny_run, tmp_path, ranks=1)
    assert 0 < sum(labels) < len(labels)
    code, out = _run(["calibrate", str(run)], capsys)
    assert code == 0, out
    report = json.loads((run / "confidence.json").read_text())["report"]
    queries = json.loads((run / "split.json").read_text())["test"]
    assert report["hits"] == len(labels) and report["queries"] == len(queries)
    assert report["relevant_rate"] == round(sum(labels) / len(labels), 4)
    assert report["ece_cross_fitted"] is not None and f"ECE {report['ece_cross_fitted']} " in " ".join(out.split())


def test_calibrate_on_held_out_hits_that_are_all_relevant_is_a_one_line_error(tiny_run, tmp_path, capsys):
    run, labels = _judge_top_hits(tiny_run, tmp_path, ranks=10)
    assert set(labels) == {1}
    code, out = _run(["calibrate", str(run)], capsys)
    assert code == 2 and "cannot fit confidence" in out and "all relevant" in out and "Traceback" not in out
    assert not (run / "confidence.json").exists()


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
    table = " ".join(table.split())  # the console wraps long lines at its width
    assert code == 0 and "exclusion rule" in table and "1 products left out" in table
    assert set(after) < set(before) and len(after) == len(before) - 1  # the one product near the rule's anchor is left out


@pytest.mark.slow  # `sparsefit train`
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
