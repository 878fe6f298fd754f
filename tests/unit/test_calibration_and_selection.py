import numpy as np
import pytest
from PIL import Image

from runtime_py.errors import UsageError
from sdk_builder.quantize import budget as select, calibration


SPEC = {"shape": [1, 3, 8, 8], "layout": "NCHW", "color": "RGB", "range": [0.0, 1.0],
        "mean": [0.5] * 3, "std": [0.5] * 3, "normalize_in_graph": False}


def test_missing_and_empty_calibration_folders_are_refused(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        calibration.from_folder(tmp_path / "nope", SPEC, None)
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(UsageError, match="holds no images"):
        calibration.from_folder(tmp_path, SPEC, None)


def test_folder_images_are_preprocessed_by_the_manifest_rules_and_capped(tmp_path):
    for i in range(5):
        Image.new("RGB", (20, 10), (255, 255, 255)).save(tmp_path / f"{i}.png")
    tensors = calibration.from_folder(tmp_path, SPEC, 3)()
    assert len(tensors) == 3 and tuple(tensors[0].shape) == (1, 3, 8, 8)
    np.testing.assert_allclose(tensors[0].numpy(), 1.0)   # (1 - 0.5) / 0.5


def test_noise_calibration_is_seeded():
    a, b = calibration.from_noise([(1, 3, 4, 4)], 2)(), calibration.from_noise([(1, 3, 4, 4)], 2)()
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))


def _entry(fmt, recipe, size, drop):
    evaluation = None if drop is None else {"drop_points": drop}
    return {"file": f"m.{fmt}.{recipe}", "format": fmt, "recipe": recipe, "size_bytes": size,
            "verification": {"evaluation": evaluation} if evaluation else {}}


def test_selection_keeps_the_smallest_within_budget():
    group = [_entry("litert", "fp32", 100, 0.0), _entry("litert", "int8-static", 30, 0.4),
             _entry("litert", "w8", 20, 1.6)]
    keep, why = select._choose(group, 1.0)
    assert keep["recipe"] == "int8-static"
    assert "exceeds" in why["m.litert.w8"] and "larger than" in why["m.litert.fp32"]


def test_selection_without_metric_keeps_the_formats_default():
    group = [_entry("litert", "int8-static", 30, None), _entry("litert", "fp32", 100, None)]
    keep, why = select._choose(group, 1.0)
    assert keep["recipe"] == "fp32" and "cannot be checked" in why["m.litert.fp32"]


def test_budget_tries_every_recipe_of_the_targets_formats():
    plan = select.candidates("android", [], exhaustive=True)
    formats = {f.name for f, _ in plan}
    assert formats == {"executorch-xnnpack", "litert"}
    assert all(r in f.recipes for f, r in plan) and len(plan) > 4


def test_noise_for_several_inputs_gives_one_tensor_per_input():
    cases = calibration.from_noise([(1, 3, 4, 4), (1, 2)], 3)()
    assert len(cases) == 3 and all([tuple(t.shape) for t in c] == [(1, 3, 4, 4), (1, 2)] for c in cases)
    assert not np.array_equal(cases[0][0].numpy(), cases[1][0].numpy())


def test_calibration_batches_keep_inputs_apart_and_refuse_bare_tensors():
    import torch

    from sdk_builder.quantize.pt2e import _calibration_batches

    examples = (torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 2, 2))
    samples = [(torch.full((1, 3, 4, 4), float(i)), torch.full((1, 1, 2, 2), -float(i))) for i in range(5)]
    batches = list(_calibration_batches(samples, examples, dynamic=True))
    assert len(batches) == 1 and [tuple(t.shape) for t in batches[0]] == [(5, 3, 4, 4), (5, 1, 2, 2)]
    np.testing.assert_array_equal(batches[0][1][:, 0, 0, 0].numpy(), -np.arange(5.0))
    static = list(_calibration_batches([(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 2, 2))], examples, False))
    assert len(static) == 2 and all(tuple(b[0].shape) == (1, 3, 4, 4) for b in static)
    with pytest.raises(UsageError, match="tuple of 2 tensors"):
        list(_calibration_batches([torch.zeros(1, 3, 4, 4)], examples, dynamic=True))
    # one input: (inputs, target) pairs still give their inputs
    single = list(_calibration_batches([(torch.ones(1, 3, 4, 4), 7)], examples[:1], dynamic=False))
    assert len(single) == 1 and float(single[0][0].sum()) == 48.0
