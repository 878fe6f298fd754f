"""Recipes are records: their properties, applicability and lookup errors."""
from __future__ import annotations

import pytest
from torch import nn

from runtime_py.errors import UsageError
from sdk_builder.formats import FORMATS
from sdk_builder.passes import PASSES
from sdk_builder.quantize.recipes import RECIPES, REFERENCE, recipe


def test_only_fp32_is_the_reference_and_only_static_int8_is_calibrated():
    assert [r.name for r in RECIPES if r.reference] == [REFERENCE] == ["fp32"]
    assert {r.name for r in RECIPES if r.calibrated} == {"int8-static", "int8-static-per-tensor"}
    assert all(r.integer == (r.compute == "int8") for r in RECIPES)


def test_every_format_offers_only_recorded_recipes_and_every_record_has_a_format():
    offered = {r for f in FORMATS for r in f.recipes}
    assert offered == {r.name for r in RECIPES}


def test_int8da_w4g32_applies_only_with_a_linear_divisible_by_32():
    w4 = recipe("int8da-w4g32")
    convs = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30 + 1, 10))
    assert "no nn.Linear with in_features divisible by 32 (1 nn.Linear layer in the model)" == \
        w4.why_not(convs)
    assert w4.why_not(nn.Sequential(nn.Flatten(), nn.Linear(1568, 10))) is None
    assert recipe("int8-static").why_not(convs) is None


def test_an_unknown_recipe_is_refused_with_a_suggestion():
    with pytest.raises(UsageError, match="did you mean 'int8-static'"):
        recipe("int8-statc")


def test_passes_that_skip_static_int8_ask_the_record():
    skipping = [p for p in PASSES if p.skip_calibrated]
    assert skipping and all(not p.concerns("executorch-xnnpack", "int8-static") for p in skipping)
    assert all(p.concerns("executorch-xnnpack", "int8-dynamic") for p in skipping)
