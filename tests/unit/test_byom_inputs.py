"""--input-shape per forward argument: the first is the image, the others are named after
forward's parameters and passed as they are."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.byom import spec_from_file
from runtime_py.errors import UsageError


TWO_INPUT = Path(__file__).parents[1] / "fixtures" / "user_models" / "corpus" / "two_input.py"


def test_extra_inputs_are_named_after_forwards_parameters():
    spec = spec_from_file(f"{TWO_INPUT}:build", [(1, 3, 64, 64), (1, 1, 32, 32)])
    assert [(e.name, e.shape) for e in spec.extra_inputs] == [("mask", (1, 1, 32, 32))]
    assert spec.input_shapes == [(1, 3, 64, 64), (1, 1, 32, 32)]
    assert spec.outputs[0].shape == (1, 2, 64, 64)


def test_a_single_input_model_has_no_extra_inputs():
    spec = spec_from_file(f"{TWO_INPUT.with_name('unet.py')}:build", [(1, 3, 64, 64)])
    assert spec.extra_inputs == () and spec.input_shapes == [(1, 3, 64, 64)]


@pytest.mark.parametrize("shapes, message", [
    ([(1, 3, 64, 64)], r"1 --input-shape given, but forward\(image, mask\) takes 2"),
    ([(1, 3, 64, 64), (1, 1, 32, 32), (1, 4)], r"3 --input-shape given"),
    ([(1, 3, 64, 64), (2, 1, 32, 32)], "the image's batch size 1"),
    ([(1, 3, 64), (1, 1, 32, 32)], "N,C,H,W"),
])
def test_shapes_that_do_not_fit_forward_are_refused(shapes, message):
    with pytest.raises(UsageError, match=message):
        spec_from_file(f"{TWO_INPUT}:build", shapes)
