"""A bundle written with manifest schema_version 1 still works: runtime_py upgrades its
manifest to version 2 in memory (runtime_py.manifest.upgrade), so it loads, runs, and
`pocket info` / `pocket verify` take it; another version is refused in one line.

The fixture tests/fixtures/bundles/v1_toy/ is a real bundle `pocket build` wrote before
version 2 (see tests/fixtures/bundles/README.md); its artifacts are stored as *.bin (no
.pte/.tflite is tracked) and copied back to their names here.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import runtime_py
from runtime_py import manifest as mf
from sdk_builder.cli import main
from tests.tools.cli import pocket

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bundles" / "v1_toy"
ARTIFACTS = ("toy_net.xnnpack.fp32.pte", "toy_net.litert.fp32.tflite")


@pytest.fixture
def v1_bundle(tmp_path) -> Path:
    bundle = tmp_path / "toy_net-android"
    shutil.copytree(FIXTURE, bundle)
    for stored in bundle.glob("*.bin"):
        stored.rename(stored.with_suffix(""))         # toy_net.xnnpack.fp32.pte.bin -> .pte
    return bundle


def _run_main(capfd, *args) -> tuple[int, str, str]:
    """main() in-process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capfd.readouterr()
    return code, out, err


def test_the_fixture_is_a_version_1_manifest():
    raw = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1
    assert [(a["file"], a["backend"]) for a in raw["artifacts"]] == \
        [("toy_net.xnnpack.fp32.pte", "xnnpack"), ("toy_net.litert.fp32.tflite", "litert")]
    assert all("delegate" not in a for a in raw["artifacts"])


def test_a_version_1_manifest_is_read_as_version_2(v1_bundle):
    manifest = mf.read(v1_bundle)
    assert manifest["schema_version"] == mf.SCHEMA_VERSION == 2
    assert [(a["runtime"], a["delegate"]) for a in manifest["artifacts"]] == \
        [("executorch", "xnnpack"), ("litert", "xnnpack")]        # LiteRT's v1 "backend" was the tag
    assert all("backend" not in a for a in manifest["artifacts"])
    raw = json.loads((v1_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert raw["schema_version"] == 1 and "backend" in raw["artifacts"][0]     # file untouched


def test_upgrade_maps_every_version_1_backend():
    def v1(runtime: str, backend: str) -> dict:
        return {"schema_version": 1, "artifacts": [{"runtime": runtime, "backend": backend}]}

    cases = [("executorch", "xnnpack", "xnnpack"), ("executorch", "coreml", "coreml"),
             ("litert", "litert", "xnnpack"), ("coreml", "coreml", None)]
    for runtime, backend, delegate in cases:
        original = v1(runtime, backend)
        upgraded = mf.upgrade(original)
        assert upgraded["artifacts"] == [{"runtime": runtime, "delegate": delegate}]
        assert upgraded["schema_version"] == 2 and original == v1(runtime, backend)   # a copy
    current = {"schema_version": 2, "artifacts": []}
    assert mf.upgrade(current) is current


def test_a_version_1_artifact_without_backend_is_named():
    with pytest.raises(mf.ManifestError, match="artifacts/0.*'backend'"):
        mf.upgrade({"schema_version": 1, "artifacts": [{"runtime": "litert"}]})


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_a_version_1_bundle_loads_and_reproduces_its_golden_outputs(v1_bundle, artifact):
    session = runtime_py.load(v1_bundle, artifact=artifact)
    assert session.runtime_label in ("executorch/xnnpack", "litert/xnnpack")
    assert session.info["delegate"] == "xnnpack"
    shape = session.manifest["input"]["shape"]
    for i, path in enumerate(session.manifest["golden"]["inputs"]):
        x = np.fromfile(v1_bundle / path, dtype="<f4").reshape(shape)
        want = np.fromfile(v1_bundle / f"golden/{artifact}.in{i}.out0.bin", dtype="<f4")
        (got,) = session.run_raw(x)
        assert np.allclose(got.ravel(), want, atol=1e-5), (artifact, i)


def test_pocket_info_and_verify_take_a_version_1_bundle(v1_bundle, capfd):
    code, out, err = _run_main(capfd, "info", v1_bundle)
    assert code == 0, err
    assert "toy_net" in out and all(name in out for name in ARTIFACTS), out
    code, out, err = _run_main(capfd, "info", "--json", v1_bundle)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["schema_version"] == 2 and shown["artifacts"][1]["delegate"] == "xnnpack"
    code, out, err = _run_main(capfd, "verify", v1_bundle)
    assert code == 0, err
    assert out.count(": ok") == len(ARTIFACTS) and "verified" in out, out


def test_pocket_verify_in_a_shell_takes_a_version_1_bundle(v1_bundle):
    proc = pocket("verify", str(v1_bundle), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": ok") == len(ARTIFACTS), proc.stdout


def test_another_schema_version_is_refused_in_one_line(v1_bundle, capfd):
    path = v1_bundle / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), "schema_version": 99}),
                    encoding="utf-8")
    with pytest.raises(mf.ManifestError, match="schema_version 99 is not supported") as err:
        runtime_py.load(v1_bundle)
    assert "\n" not in str(err.value)
    for command in ("info", "verify"):
        code, out, err = _run_main(capfd, command, v1_bundle)
        lines = err.strip().splitlines()
        assert code not in (0, None) and len(lines) == 1, err
        assert lines[0].startswith("error: manifest schema_version 99 is not supported"), err
