"""The corpus table: metadata read without importing a model, cells from manifests, the
pass rate and the numbered reasons the README shows."""
from __future__ import annotations

import pytest

from runtime_py.errors import UsageError
from sdk_builder import corpus


def _row(model: str, family: str, cells: dict) -> dict:
    return {"model": model, "family": family, "input_shapes": [[1, 3, 8, 8]], "task": "raw",
            "cells": cells}


def _all(status: str = "verified", **extra) -> dict:
    return {c: {"status": status, **extra} for c in corpus.columns("all")}


def test_every_corpus_file_declares_its_metadata_as_literals():
    files = corpus.discover(corpus.DEFAULT_CORPUS)
    metas = [corpus.read_metadata(p) for p in files]
    assert len({m["family"] for m in metas}) >= 20
    assert all(m["input_shapes"] and all(len(s) == 4 for s in m["input_shapes"]) for m in metas)


def test_unknown_models_and_missing_metadata_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no corpus model"):
        corpus.discover(corpus.DEFAULT_CORPUS, ("nope",))
    (tmp_path / "bare.py").write_text("def build():\n    pass\n")
    with pytest.raises(UsageError, match="lacks FAMILY, INPUT_SHAPES, TASK"):
        corpus.read_metadata(tmp_path / "bare.py")


def test_pass_rate_and_reasons():
    cells = _all(delegated_share=1.0, fallback_ops=[])
    partial = dict(cells)
    partial["litert fp32"] = {"status": "verified", "delegated_share": 0.9, "fallback_ops": ["BROADCAST_TO"]}
    broken = dict(cells)
    broken["coreml w8"] = {"status": "not built", "reason": "coreml w8 export failed: op aten::foo"}
    result = corpus.summarize([_row("a", "A", cells), _row("b", "B", partial), _row("c", "C", broken)], "all")
    assert result["artifacts"] == 3 * len(corpus.columns("all"))
    assert result["verified"] == result["artifacts"] - 1
    table = corpus.markdown(result)
    assert f"**{result['verified']} of {result['artifacts']} artifacts" in table
    assert "90% delegated; off the delegate: BROADCAST_TO" in table
    assert "`c` coreml w8: coreml w8 export failed: op aten::foo" in table
    assert result["executorch_fp32_fully_delegated"] == 3


def test_a_manifest_entry_becomes_a_cell():
    entry = {"file": "m.xnnpack.fp32.pte", "recipe": "fp32", "canonical_passes": ["pool-defaults"],
             "delegation": {"delegated_share": 1.0, "fallback_ops": []},
             "verification": {"status": "passed", "golden": {"max_abs_error": 2e-6}}}
    cell = corpus._cell_of_entry(entry)
    assert cell["status"] == "verified" and cell["passes"] == ["pool-defaults"]
    assert cell["max_abs_error"] == 2e-6 and cell["delegated_share"] == 1.0
    entry["verification"]["status"] = "structure-only"
    assert corpus._cell_of_entry(entry)["status"] == "structure-only"
