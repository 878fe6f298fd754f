"""The check tests/export/test_user_corpus_builds.py applies to a real corpus run, fed
fabricated runs made from the recorded one (docs/corpus.json): it fails each way a cell can
regress, and passes a run that builds as well or better."""
from __future__ import annotations

import copy

import pytest

from sdk_builder import corpus
from tests.tools.corpus_check import regressions

MODEL = "yolo_head"                 # the export tier's subset


@pytest.fixture(scope="module")
def recorded() -> dict:
    run = corpus.load()
    assert run is not None, "run `make corpus` to record docs/corpus.json"
    return run


def _run(recorded: dict, model: str = MODEL) -> dict:
    """A fresh run of one model that builds exactly as recorded."""
    row = copy.deepcopy(next(r for r in recorded["rows"] if r["model"] == model))
    return {"target": recorded["target"], "columns": list(recorded["columns"]), "rows": [row]}


def _a_verified_column(run: dict) -> str:
    return next(c for c, cell in run["rows"][0]["cells"].items()
                if cell["status"] == "verified" and cell.get("delegated_share") is not None)


def test_the_recorded_run_against_itself_has_no_problem(recorded):
    assert any(row["model"] == MODEL for row in recorded["rows"])
    assert regressions(recorded, recorded) == []        # every recorded failure names a reason
    assert regressions(recorded, _run(recorded)) == []


def test_a_verified_cell_that_no_longer_builds_is_a_regression(recorded):
    run = _run(recorded)
    column = _a_verified_column(run)
    run["rows"][0]["cells"][column] = {"status": "not built",
                                       "reason": f"{column} export failed: op aten::foo is not supported"}
    assert regressions(recorded, run) == [
        f"{MODEL} {column}: verified in the recorded run, now not built: {column} export failed: "
        "op aten::foo is not supported"]


def test_a_cell_that_fails_verification_is_a_regression(recorded):
    run = _run(recorded)
    column = _a_verified_column(run)
    run["rows"][0]["cells"][column].update(status="failed", reason="golden max abs error 0.3 > 1e-3 (fp32)")
    assert regressions(recorded, run) == [f"{MODEL} {column}: verified in the recorded run, now failed: "
                                          "golden max abs error 0.3 > 1e-3 (fp32)"]


def test_a_smaller_delegated_share_is_a_regression(recorded):
    run = _run(recorded)
    column = _a_verified_column(run)
    cell = run["rows"][0]["cells"][column]
    cell.update(delegated_share=cell["delegated_share"] - 0.05, fallback_ops=["aten.sub.Tensor"])
    (problem,) = regressions(recorded, run)
    assert f"{MODEL} {column}: " in problem and "off the delegate: aten.sub.Tensor" in problem


def test_a_missing_cell_an_unknown_model_and_an_empty_run_are_problems(recorded):
    run = _run(recorded)
    column = _a_verified_column(run)
    del run["rows"][0]["cells"][column]
    assert regressions(recorded, run) == [f"{MODEL} {column}: missing from the run (recorded verified)"]
    run = _run(recorded)
    run["rows"][0]["model"] = "not_recorded"
    assert regressions(recorded, run) == ["not_recorded: not in the recorded run (run `make corpus` to record it)"]
    assert regressions(recorded, {"rows": []}) == ["the corpus run holds no models"]


def test_a_failure_without_a_reason_is_a_problem(recorded):
    run = _run(recorded)
    column = _a_verified_column(run)
    run["rows"][0]["cells"]["a new column"] = {"status": "not built", "reason": "failed"}
    run["rows"][0]["cells"][column] = {"status": "not built"}
    problems = regressions(recorded, run)
    assert len(problems) == 3, problems         # the lost cell, then both cells without a reason
    assert problems[1] == f"{MODEL} {column}: not built without a reason and a way out ('')"
    assert problems[2] == f"{MODEL} a new column: not built without a reason and a way out ('failed')"


def test_a_recorded_failure_may_stay_or_improve(recorded):
    broken = [(row["model"], c) for row in recorded["rows"] for c, cell in row["cells"].items()
              if cell["status"] != "verified"]
    row = {"model": "m", "family": "F", "cells": {"a": {"status": "not built",
                                                        "reason": "a export failed: op aten::foo"},
                                                  "b": {"status": "verified", "delegated_share": 0.9}}}
    record = {"rows": [row]}
    same = {"rows": [copy.deepcopy(row)]}
    better = {"rows": [{**row, "cells": {"a": {"status": "verified", "delegated_share": 1.0},
                                         "b": {"status": "verified", "delegated_share": 0.95}}}]}
    assert regressions(record, same) == [] and regressions(record, better) == []
    for model, column in broken:                # the recorded run's own failures, fixed
        run = _run(recorded, model)
        run["rows"][0]["cells"][column] = {"status": "verified"}
        assert regressions(recorded, run) == []
