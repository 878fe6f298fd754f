"""Every recipe is built through the CLI, as users build it, on a model it applies to.

The zoo's target bundles build fp32, int8-static, fp16 and w8, and the iOS bundles every Core
ML recipe; this test builds the remaining recipes of the Android formats on a user model with
an nn.Linear(1568, 10) head, so int8da-w4g32 has a layer to quantize (its check once looked
for nn.Linear in the canonicalized graph, where none remain, and refused every model)."""
from __future__ import annotations

from pathlib import Path

import pytest

import runtime_py
from runtime_py import manifest as mf
from sdk_builder.formats import get_format
from tests.tools.cli import pocket

MODEL = Path(__file__).parents[1] / "fixtures" / "user_models" / "digit_mlp_head.py"
RECIPES = ("int8-dynamic", "int8-static-per-tensor", "int8da-w4g32", "fp16", "w8")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("every-recipe")
    proc = pocket("build", "--model-file", f"{MODEL}:build", "--input-shape", "1,1,28,28",
                  "--task", "classification", "-t", "android",
                  *(a for r in RECIPES for a in ("-r", r)), "-o", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "digit_mlp_head-android"


def test_each_requested_recipe_is_built_and_verified(bundle):
    manifest = mf.read(bundle)
    built = {(a["format"], a["recipe"]) for a in manifest["artifacts"]}
    wanted = {(f, r) for f in ("executorch-xnnpack", "litert") for r in RECIPES
              if r in get_format(f).recipes}
    assert built == wanted and not manifest["skipped"]
    assert all(a["verification"]["status"] == "passed" for a in manifest["artifacts"])


def test_int8da_w4g32_quantizes_the_users_linear_layer(bundle):
    entry = next(a for a in mf.read(bundle)["artifacts"] if a["recipe"] == "int8da-w4g32")
    details = entry["recipe_details"]
    assert details["quantized_linear_layers"] == 1 and details["quantized_weights"] == 1568 * 10
    session = runtime_py.load(bundle).artifact("xnnpack.int8da-w4g32")
    assert session.run_raw(session.preprocess(_digit()))[0].shape == (1, 10)


def test_a_recipe_that_does_not_apply_is_a_row_not_an_abort(tmp_path):
    """LeNet-style models without a Linear divisible by 32: the budget search reports
    int8da-w4g32 as not applicable with the reason and keeps going."""
    lenet = MODEL.parent / "corpus" / "lenet.py"
    proc = pocket("build", "--model-file", f"{lenet}:build", "--input-shape", "1,1,28,28",
                  "-t", "android", "-r", "fp32", "-r", "int8da-w4g32", "--max-drop", "1.0",
                  "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = mf.read(tmp_path / "lenet-android")
    row = next(t for t in manifest["selection"]["tried"] if t["recipe"] == "int8da-w4g32")
    assert not row["kept"] and not row["applicable"]
    assert "not applicable: no nn.Linear with in_features divisible by 32" in row["why"]
    assert "not applicable" in (tmp_path / "lenet-android" / "report.md").read_text()
    assert {a["recipe"] for a in manifest["artifacts"]} == {"fp32"}


def _digit():
    import numpy as np

    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    return image
