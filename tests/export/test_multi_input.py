"""A user model with two inputs (an image and a mask): every runtime gets both, in forward's
order, and the bundle says how to feed the second."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import runtime_py
from runtime_py import manifest as mf
from runtime_py.runtimes import can_run
from runtime_py.errors import UsageError
from sdk_builder.verify import golden_cases


MODEL = Path(__file__).parents[1] / "fixtures" / "user_models" / "corpus" / "two_input.py"
IMAGE, MASK = (1, 3, 64, 64), (1, 1, 32, 32)


def pocket(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdk_builder.cli", *args],
                          capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """fp32 for ExecuTorch and LiteRT, fp16 for Core ML and the Core ML-delegated .pte."""
    out = tmp_path_factory.mktemp("two_input")
    proc = pocket("build", "--model-file", f"{MODEL}:build", "--input-shape", ",".join(map(str, IMAGE)),
                  "--input-shape", ",".join(map(str, MASK)), "--target", "all", "-r", "fp32",
                  "-r", "fp16", "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "two_input-all"


@pytest.fixture(scope="module")
def eager():
    import importlib.util

    spec = importlib.util.spec_from_file_location("two_input_fixture", MODEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build().eval()


def test_manifest_names_the_extra_input_and_golden_files_hold_both(bundle):
    manifest = mf.read(bundle)
    assert manifest["extra_inputs"] == [{"name": "mask", "shape": list(MASK), "dtype": "float32"}]
    assert {a["format"] for a in manifest["artifacts"]} == \
        {"executorch-xnnpack", "litert", "coreml", "executorch-coreml"} and not manifest["skipped"]
    cases = golden_cases(bundle, manifest)
    assert len(cases) == len(manifest["golden"]["inputs"]) > 0
    assert all([c.shape for c in case] == [IMAGE, MASK] for case in cases)
    for entry in manifest["artifacts"]:
        assert entry["verification"]["status"] == "passed", (entry["file"], entry["verification"])
        if entry["recipe"] == "fp32":
            assert entry["verification"]["golden"]["max_abs_error"] <= 1e-4, entry["file"]


def test_every_runtime_takes_the_mask_in_forwards_order(bundle, eager):
    """The mask changes the answer (it gates the image features): an artifact that ignored it
    or swapped the inputs would not follow PyTorch on both masks."""
    rng = np.random.default_rng(1)
    image = rng.random(IMAGE, dtype=np.float32)
    masks = [np.zeros(MASK, np.float32), np.ones(MASK, np.float32)]
    with torch.no_grad():
        want = [eager(torch.from_numpy(image), torch.from_numpy(m)).numpy() for m in masks]
    assert np.abs(want[0] - want[1]).max() > 1.0
    manifest = mf.read(bundle)
    for entry in manifest["artifacts"]:
        if not can_run(entry):
            continue
        session = runtime_py.load(bundle, artifact=entry["file"])
        tol = 1e-4 if entry["recipe"] == "fp32" else 0.05 * float(np.abs(want[1]).max())
        for mask, expected in zip(masks, want):
            got = session.run_raw(image, mask)[0]
            assert np.abs(got - expected).max() <= tol, (entry["file"], np.abs(got - expected).max())


def test_session_run_takes_an_image_and_the_extra_input(bundle):
    session = runtime_py.load(bundle, artifact="litert.fp32")
    photo = (np.random.default_rng(2).random((50, 70, 3)) * 255).astype(np.uint8)
    result = session.run(photo, np.ones(MASK, np.float32))
    assert result["outputs"][0].shape == (1, 2, 64, 64)
    with pytest.raises(UsageError, match=r"1 extra input\(s\) \(mask \[1, 1, 32, 32\]\); 0 given"):
        session.run(photo)
    with pytest.raises(UsageError, match=r"'mask' must be a float32 array of shape \[1, 1, 32, 32\]"):
        session.run(photo, np.ones((1, 1, 16, 16), np.float32))


def test_pocket_verify_and_run_with_extra_input(bundle, tmp_path):
    proc = pocket("verify", str(bundle))
    assert proc.returncode == 0 and "verified" in proc.stdout, proc.stderr
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(3).random((48, 40, 3)) * 255).astype(np.uint8)).save(photo)
    mask = tmp_path / "mask.npy"
    np.save(mask, np.ones(MASK, np.float32))
    proc = pocket("run", str(bundle), str(photo), "--extra-input", str(mask))
    assert proc.returncode == 0 and "output 0: shape [1, 2, 64, 64]" in proc.stdout, proc.stderr
    proc = pocket("run", str(bundle), str(photo))
    assert proc.returncode == 2 and "--extra-input" in proc.stderr
    (tmp_path / "text.npy").write_text("not numpy")
    proc = pocket("run", str(bundle), str(photo), "--extra-input", str(tmp_path / "text.npy"))
    assert proc.returncode == 2 and "is not a .npy file" in proc.stderr
