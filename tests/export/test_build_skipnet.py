"""Real builds of the zoo's SkipNet-M, loaded in the real runtimes through the CLI and runtime_py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import runtime_py
from runtime_py import manifest as mf
from tests.tools.cli import pocket
from runtime_py.errors import PocketError


DIGITS = sorted((Path(__file__).parents[1] / "fixtures" / "digits").glob("*.png"))


@pytest.fixture(scope="module")
def android(shared_bundle) -> Path:
    """`pocket build skipnet_m --target android`, the shared bundle (tests/bundles.py)."""
    path = shared_bundle("skipnet_m-android")
    assert "skipnet_m.xnnpack.int8-static.pte" in shared_bundle.output("skipnet_m-android")   # the summary table
    return path


@pytest.fixture(scope="module")
def eager():
    from models.registry import get

    spec = get("skipnet_m")
    return spec, spec.load()


def _artifact(bundle: Path, fmt: str, recipe: str) -> dict:
    manifest = mf.read(bundle)
    return next(a for a in manifest["artifacts"] if a["format"] == fmt and a["recipe"] == recipe)


def test_android_bundle_holds_both_formats_in_both_recipes(android):
    manifest = mf.read(android)
    got = {(a["format"], a["recipe"]) for a in manifest["artifacts"]}
    assert got == {(f, r) for f in ("executorch-xnnpack", "litert") for r in ("fp32", "int8-static")}
    for art in manifest["artifacts"]:
        assert (android / art["file"]).stat().st_size == art["size_bytes"]
        assert art["verification"]["status"] == "passed"
        assert len(art["golden_outputs"]) == len(manifest["golden"]["inputs"]) > 0
    assert (android / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    assert not list(android.parent.glob(".skipnet_m-android.partial-*"))


@pytest.mark.parametrize("fmt", ["executorch-xnnpack", "litert"])
def test_fp32_artifacts_match_eager_pytorch(android, eager, fmt):
    spec, module = eager
    session = runtime_py.load(android, artifact=_artifact(android, fmt, "fp32")["file"])
    x = spec.evaluation().inputs[:8]
    with torch.no_grad():
        want = module(x).numpy()
    got = np.concatenate([session.run_raw(x[i:i + 1].numpy())[0] for i in range(len(x))])
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize("fmt", ["executorch-xnnpack", "litert"])
def test_int8_static_is_small_and_loses_at_most_one_point(android, eager, fmt):
    spec, module = eager
    fp32, int8 = _artifact(android, fmt, "fp32"), _artifact(android, fmt, "int8-static")
    assert int8["size_bytes"] <= 0.35 * fp32["size_bytes"]
    ev = spec.evaluation()
    with torch.no_grad():
        torch_acc = (module(ev.inputs).argmax(1) == ev.targets).float().mean().item()
    session = runtime_py.load(android, artifact=int8["file"])
    preds = [int(np.argmax(session.run_raw(ev.inputs[i:i + 1].numpy())[0])) for i in range(len(ev.inputs))]
    acc = float(np.mean(np.array(preds) == ev.targets.numpy()))
    assert torch_acc - acc <= 0.01
    assert int8["verification"]["evaluation"]["artifact"] == pytest.approx(acc)


def test_pocket_run_reads_real_digits(android):
    proc = pocket("run", str(android), str(DIGITS[7]), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["label"] == DIGITS[7].name.split("_")[0] and result["score"] > 0.5
    assert proc.stderr == ""


@pytest.mark.parametrize("artifact", ["xnnpack.fp32", "xnnpack.int8", "litert.fp32", "litert.int8"])
def test_every_artifact_reads_every_digit(android, artifact):
    session = runtime_py.load(android, artifact=artifact)
    labels = [session.run(path)["label"] for path in DIGITS]
    assert labels == [p.name.split("_")[0] for p in DIGITS]


def test_single_artifact_file_uses_its_bundles_manifest(android):
    session = runtime_py.load(android / _artifact(android, "litert", "fp32")["file"])
    assert session.run(DIGITS[3])["label"] == "3"


def test_verify_passes_on_the_intact_bundle(android):
    proc = pocket("verify", str(android))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("verified")


def test_verify_fails_in_one_line_on_a_modified_artifact(android, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(android, copy)
    target = copy / _artifact(android, "litert", "int8-static")["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    proc = pocket("verify", str(copy))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and target.name in lines[0] and "sha256" in lines[0]
    with pytest.raises(PocketError, match="sha256"):
        runtime_py.load(copy)


def test_failed_build_keeps_the_previous_bundle(android, tmp_path, monkeypatch):
    import sdk_builder.build as build_mod
    from models.registry import get

    out = tmp_path / "dist"
    shutil.copytree(android, out / android.name)
    before = (out / android.name / "manifest.json").read_bytes()
    real_export = build_mod._export
    calls = []

    def flaky_export(fmt, recipe, *args):
        calls.append(recipe)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")   # not an ExportError: that would be skipped
        return real_export(fmt, recipe, *args)

    monkeypatch.setattr(build_mod, "_export", flaky_export)
    with pytest.raises(RuntimeError, match="simulated"):
        build_mod.build(build_mod.BuildRequest(get("skipnet_m"), "android", ["fp32"], None, out))
    assert (out / android.name / "manifest.json").read_bytes() == before
    assert not list(out.glob(".skipnet_m-android.partial-*"))
    assert (out / "skipnet_m-android.failed.log").is_file()


def test_disk_full_during_an_export_is_a_clean_error_not_a_skipped_artifact(android, tmp_path,
                                                                          monkeypatch):
    import errno

    import sdk_builder.build as build_mod
    from models.registry import get
    from sdk_builder.bundle import BundleError

    out = tmp_path / "dist"
    shutil.copytree(android, out / android.name)
    before = (out / android.name / "manifest.json").read_bytes()

    import sdk_builder.formats.executorch_xnnpack as xnnpack_exporter

    def disk_full(job):
        raise OSError(errno.ENOSPC, "No space left on device", str(job.out_path))

    monkeypatch.setattr(xnnpack_exporter, "export", disk_full)
    with pytest.raises(BundleError, match="no space left"):
        build_mod.build(build_mod.BuildRequest(get("skipnet_m"), "android", ["fp32"], None, out))
    assert (out / android.name / "manifest.json").read_bytes() == before
    assert not list(out.glob(".skipnet_m-android.partial-*"))


