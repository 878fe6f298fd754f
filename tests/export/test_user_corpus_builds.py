"""A slow subset of `pocket doctor --corpus` in every `make test`: the subset builds for
`--target all` at least as well as the recorded full run (docs/corpus.json, which the
README's table shows): no cell verified there fails here, no delegated share shrinks, and
every artifact that does not build says why with a way out. The comparison is
tests/tools/corpus_check.py, which tests/unit/test_corpus_regressions.py feeds fabricated
regressions. The full corpus runs with `make corpus`."""
from __future__ import annotations

import json

import pytest

from sdk_builder import corpus
from tests.tools.cli import pocket
from tests.tools.corpus_check import regressions

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
    assert [row["model"] for row in result["rows"]] == list(SUBSET)
    problems = regressions(recorded, result)
    assert not problems, "the corpus subset builds worse than docs/corpus.json:\n" + "\n".join(problems)
