"""Every zoo model x every Core ML recipe, verified on this machine: each ML program (the
.mlpackage and the one inside the Core ML-delegated .pte) runs in runtime_py's interpreter
on the golden inputs and the whole evaluation split. fp16 programs agree with PyTorch fp32
within half a point of the task metric and report their SNR; compressed programs report
measured accuracy, never an estimate."""
from __future__ import annotations

import sys

import pytest

import runtime_py
from models import registry
from runtime_py import manifest as mf
from tests.tools.cli import pocket

pytestmark = [
    pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML itself runs these"),
]

ZOO = registry.names()


@pytest.fixture(scope="module", params=ZOO)
def built(request, zoo_ios_bundle):
    bundle = zoo_ios_bundle(request.param)
    return bundle, mf.read(bundle)


def test_every_core_ml_artifact_ran_here_and_is_measured(built):
    _, manifest = built
    files = [a["file"] for a in manifest["artifacts"]]
    assert not manifest["skipped"], manifest["skipped"]
    assert len(files) == 7, files                       # 5 .mlpackage recipes + 2 .pte
    for entry in manifest["artifacts"]:
        ver = entry["verification"]
        assert ver["status"] == "passed" and ver.get("emulated") is True, (entry["file"], ver)
        assert ver["runtime"].endswith("coreml/emulated"), entry["file"]
        evaluation = ver["evaluation"]
        assert not evaluation.get("estimated") and evaluation["samples"] > 0, entry["file"]


def test_fp16_programs_agree_with_pytorch_within_half_a_point(built):
    _, manifest = built
    fp16 = [a for a in manifest["artifacts"] if a["recipe"] == "fp16"]
    assert len(fp16) == 2
    for entry in fp16:
        ver = entry["verification"]
        assert abs(ver["evaluation"]["drop_points"]) <= 0.5, (entry["file"], ver["evaluation"])
        assert ver["golden"]["snr_db"] > 25.0, entry["file"]      # fp16 rounding after every op


def test_report_says_emulated_and_shows_every_recipe(built):
    bundle, manifest = built
    report = (bundle / "report.md").read_text(encoding="utf-8")
    for entry in manifest["artifacts"]:
        row = next(line for line in report.splitlines() if entry["file"] in line and "|" in line)
        assert "passed (emulated)" in row and "estimated" not in row, row


def test_runtime_py_runs_each_artifact_as_the_build_did(built):
    bundle, manifest = built
    for entry in manifest["artifacts"]:
        session = runtime_py.load(bundle, artifact=entry["file"])
        assert session.runtime_label == entry["verification"]["runtime"]
    assert pocket("verify", str(bundle)).returncode == 0
