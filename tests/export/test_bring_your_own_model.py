"""A user's own model through the same door: build, verify, run; and formats that cannot take it."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import runtime_py
from runtime_py import manifest as mf


FIXTURES = Path(__file__).parents[1] / "fixtures" / "user_models"


def pocket(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdk_builder.cli", *args],
                          capture_output=True, text=True, timeout=1500)


def _user_module(name: str):
    spec = importlib.util.spec_from_file_location(f"fixture_{name.replace('/', '_')}", FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


@pytest.fixture(scope="module")
def unet_bundle(tmp_path_factory) -> Path:
    """The U-Net of issue 11, written the ordinary way (F.max_pool2d(x, 2), GroupNorm, GELU,
    ConvTranspose2d, skip concat, no .eval()): it built 2 of 7 artifacts before the
    canonicalizing passes."""
    out = tmp_path_factory.mktemp("byom")
    proc = pocket("build", "--model-file", f"{FIXTURES / 'corpus' / 'unet.py'}:build",
                  "--input-shape", "1,3,64,64", "--target", "all", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "unet-all"


def test_user_model_bundle_has_all_seven_artifacts_verified_and_delegated(unet_bundle):
    manifest = mf.read(unet_bundle)
    assert len(manifest["artifacts"]) == 7 and not manifest["skipped"]
    assert {a["format"] for a in manifest["artifacts"]} == \
        {"executorch-xnnpack", "litert", "coreml", "executorch-coreml"}
    for entry in manifest["artifacts"]:
        assert entry["verification"]["status"] == "passed", entry["file"]
        assert "pool-defaults" in entry["canonical_passes"], entry["file"]
        if entry["delegation"]:
            assert entry["delegation"]["delegated_share"] == 1.0, (entry["file"], entry["delegation"])
    assert manifest["model"]["task"] == "raw" and manifest["outputs"][0]["shape"] == [1, 4, 64, 64]
    assert "Task metric: n/a" in (unet_bundle / "report.md").read_text()


@pytest.mark.parametrize("fmt", ["executorch-xnnpack", "litert"])
def test_user_model_fp32_parity(unet_bundle, fmt):
    module = _user_module("corpus/unet").eval()
    manifest = mf.read(unet_bundle)
    entry = next(a for a in manifest["artifacts"] if a["format"] == fmt and a["recipe"] == "fp32")
    session = runtime_py.load(unet_bundle, artifact=entry["file"])
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    assert np.abs(session.run_raw(x)[0] - want).max() <= 1e-4


def test_an_op_a_format_cannot_take_names_op_and_format_and_the_rest_still_build(tmp_path):
    proc = pocket("build", "--model-file", f"{FIXTURES / 'unsupported_op.py'}:build",
                  "--input-shape", "1,3,16,16", "--target", "all", "-r", "fp32", "-r", "fp16",
                  "-o", str(tmp_path))
    assert proc.returncode == 3, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "aten::sort" in error and "executorch-xnnpack fp32" in error
    assert "litert fp32" in error
    manifest = mf.read(tmp_path / "unsupported_op-all")
    assert {a["format"] for a in manifest["artifacts"]} == {"coreml", "executorch-coreml"}
    assert {(s["format"], s["recipe"]) for s in manifest["skipped"]} == \
        {("executorch-xnnpack", "fp32"), ("litert", "fp32"), ("litert", "fp16")}


@pytest.mark.parametrize("args, message", [
    (["--model-file", "nowhere.py:build", "--input-shape", "1,3,8,8"], "does not exist"),
    (["--model-file", f"{FIXTURES / 'tiny_unet.py'}:missing", "--input-shape", "1,3,8,8"], "no callable 'missing'"),
    (["--model-file", f"{FIXTURES / 'tiny_unet.py'}:build"], "needs --input-shape"),
    (["--model-file", f"{FIXTURES / 'tiny_unet.py'}:build", "--input-shape", "1,3,64"], "N,C,H,W"),
    (["skipnet_m", "--model-file", f"{FIXTURES / 'tiny_unet.py'}:build"], "one of them"),
    (["skipnet_m", "--input-shape", "1,3,8,8"], "are for --model-file models"),
    (["--model-file", f"{FIXTURES / 'corpus' / 'two_input.py'}:build", "--input-shape", "1,3,64,64"],
     "forward(image, mask) takes 2 tensor(s)"),
    (["--model-file", f"{FIXTURES / 'corpus' / 'two_input.py'}:build", "--input-shape", "1,3,64,64",
      "--input-shape", "2,1,32,32"], "the image's batch size 1"),
])
def test_user_model_mistakes_are_one_line(tmp_path, args, message):
    proc = pocket("build", *args, "-o", str(tmp_path))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_data_dependent_control_flow_is_refused_with_the_users_line(tmp_path):
    proc = pocket("build", "--model-file", f"{FIXTURES / 'data_dependent.py'}:build",
                  "--input-shape", "1,3,16,16", "-r", "fp32", "-o", str(tmp_path))
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()[-1]
    assert "data-dependent control flow" in error and "data_dependent.py:13" in error, error
    assert "torch.where" in error
    # the factory left its model in training mode: said once, before the build
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "training mode" in notes[0]


def test_output_names_name_the_outputs_and_must_match_their_count(tmp_path):
    model = f"{FIXTURES / 'corpus' / 'two_outputs.py'}:build"
    proc = pocket("build", "--model-file", model, "--input-shape", "1,3,64,64", "-r", "fp32",
                  "--output-names", "logits,mask", "-o", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = mf.read(tmp_path / "two_outputs-android")
    assert [o["name"] for o in manifest["outputs"]] == ["logits", "mask"]
    assert all(a["canonical_passes"] is not None for a in manifest["artifacts"])
    proc = pocket("build", "--model-file", model, "--input-shape", "1,3,64,64",
                  "--output-names", "only_one", "-o", str(tmp_path))
    assert proc.returncode == 2 and "1 name(s) for the model's 2 output(s)" in proc.stderr
