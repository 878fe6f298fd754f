"""A slow subset of `pocket doctor --corpus` in every `make test`: the subset builds for
`--target all` at least as well as the recorded full run (docs/corpus.json, which the
README's table shows), and every artifact that does not build says why with a way out.
The full corpus runs with `make corpus`."""
from __future__ import annotations

import json

import pytest

from sdk_builder import corpus
from tests.tools.cli import pocket

pytestmark = pytest.mark.export

# a detection head with an in-graph decode and int8 calibration through integer maths
# (the U-Net is built, and held to all seven artifacts, by test_bring_your_own_model.py;
# the two-input model by test_multi_input.py; attention and LayerNorm passes are checked
# against eager in tests/unit/test_canonical.py). One model keeps make test inside its budget.
SUBSET = ("yolo_head",)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "subset.json"
    args = [arg for name in SUBSET for arg in ("--only", name)]
    proc = pocket("doctor", "--corpus", *args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_subset_does_not_build_worse_than_the_recorded_run(result):
    recorded = corpus.load()
    assert recorded is not None, "run `make corpus` to record docs/corpus.json"
    rows = {row["model"]: row for row in recorded["rows"]}
    for row in result["rows"]:
        before = rows[row["model"]]["cells"]
        lost = [c for c, cell in row["cells"].items()
                if before.get(c, {}).get("status") == "verified" and cell["status"] != "verified"]
        assert not lost, (row["model"], {c: row["cells"][c] for c in lost})


def test_a_failure_names_a_reason_and_a_way_out(result):
    for row in result["rows"]:
        for column, cell in row["cells"].items():
            if cell["status"] != "verified":
                assert len(cell.get("reason", "")) > 20, (row["model"], column, cell)
