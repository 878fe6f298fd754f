"""EPE-EDANet end to end: `pocket build --target android` (and, shared with
test_zoo_core_ml.py, `--target ios`) puts the entropy routing inside every artifact
(routes checked element for element, int8 included), int8 stays within a point of
PyTorch's mIoU, and `pocket run --out` draws photos of any size and aspect."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime_py import manifest as mf
from tests.tools.cli import pocket


FORBIDDEN_ROUTING_OPS = ("topk", "sort", "argsort", "gather", "gather_nd", "scatter", "scatter_nd")


@pytest.fixture(scope="module")
def bundle(shared_bundle) -> Path:
    """`pocket build epe_edanet --target android`, the shared bundle (tests/bundles.py)."""
    return shared_bundle("epe_edanet-android")


@pytest.fixture(scope="module")
def manifest(bundle) -> dict:
    return mf.read(bundle)


def _entries(manifest: dict, runtime: str) -> list[dict]:
    return [a for a in manifest["artifacts"] if a["runtime"] == runtime and a["delegate"] != "coreml"]


def test_every_format_is_in_the_bundle(manifest):
    formats = {a["format"] for a in manifest["artifacts"]}
    assert {"executorch-xnnpack", "litert"} <= formats, formats
    assert not manifest["skipped"], manifest["skipped"]
    assert [o["compare"] for o in manifest["outputs"]] == ["close", "exact"]


def test_fp32_artifacts_match_pytorch_and_route_exactly(manifest):
    for entry in manifest["artifacts"]:
        if entry["recipe"] != "fp32":
            continue
        golden = entry["verification"]["golden"]
        assert golden["max_abs_error"] <= 1e-4, entry["file"]
        n = len(manifest["golden"]["inputs"])
        assert golden["exact_outputs_match"] == f"{n}/{n}", entry["file"]


def test_int8_artifacts_route_as_pytorch_does_on_every_heldout_scene(manifest):
    int8 = [a for a in manifest["artifacts"] if a["recipe"].startswith("int8")]
    assert int8
    for entry in int8:
        evaluation = entry["verification"]["evaluation"]
        matched, total = map(int, evaluation["exact_outputs_match"].split("/"))
        assert matched == total == evaluation["samples"], entry["file"]
        assert entry["recipe_details"]["kept_float_modules"], entry["file"]


def test_best_int8_artifact_is_within_one_miou_point(manifest):
    drops = [a["verification"]["evaluation"]["drop_points"] for a in manifest["artifacts"]
             if a["recipe"].startswith("int8")]
    assert min(drops) <= 1.0, drops


def test_executorch_fp32_runs_in_one_xnnpack_partition(manifest):
    fp32 = next(a for a in _entries(manifest, "executorch") if a["recipe"] == "fp32")
    assert fp32["delegation"]["delegated_share"] == 1.0, fp32["delegation"]["fallback_ops"]


def test_core_ml_programs_carry_the_routing_without_sorting_or_gathering(zoo_ios_bundle):
    from runtime_py.runtimes.coreml import describe

    ios = zoo_ios_bundle("epe_edanet")
    entries = [a for a in mf.read(ios)["artifacts"] if a["runtime"] == "coreml"]
    assert entries
    for entry in entries:
        ops = describe(mf.resolve(ios, entry["file"]))["ops"]
        assert ops.get("ceil", 0) >= 1 and ops.get("matmul", 0) >= 2, (entry["file"], ops)
        assert not [op for op in ops if op in FORBIDDEN_ROUTING_OPS], (entry["file"], ops)
        assert entry["recipe_details"]["kept_float_modules"]


@pytest.mark.parametrize("size, mode", [((333, 517), "RGB"), ((1000, 211), "L"), ((64, 64), "RGBA")])
def test_pocket_run_draws_any_photo_at_its_own_size(bundle, tmp_path, size, mode):
    from models.photos import load_photo

    photo = Image.fromarray(load_photo("astronaut")).resize(size, Image.BILINEAR).convert(mode)
    path = tmp_path / f"photo.{'png' if mode == 'RGBA' else 'jpg'}"
    photo.save(path)
    picture = tmp_path / "seg.png"
    proc = pocket("run", str(bundle), str(path), "-a", "xnnpack.fp32", "--out", str(picture), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["size"] == list(size) and result["model_size"] == [128, 128]
    assert sum(c["area"] for c in result["classes"]) == pytest.approx(1.0)
    drawn = Image.open(picture)
    scale = min(1.0, 1024 / max(size))
    assert drawn.width >= 3 * round(size[0] * scale)          # input | overlay | routes
    assert drawn.height > round(size[1] * scale)              # plus the legend


def test_dense_answer_is_the_same_through_every_fp32_runtime(bundle):
    import runtime_py

    image = np.asarray(Image.open(Path(__file__).parents[1] / "fixtures" / "digits" / "7_3912.png").convert("RGB")
                       .resize((200, 150)))
    answers = []
    for name in ("xnnpack.fp32", "litert.fp32"):
        answers.append(runtime_py.load(bundle, artifact=name).run(image))
    np.testing.assert_array_equal(answers[0]["patch_routes"], answers[1]["patch_routes"])
    agree = np.mean(answers[0]["class_map"] == answers[1]["class_map"])
    assert agree > 0.999 and answers[0]["class_map"].shape == (150, 200)
