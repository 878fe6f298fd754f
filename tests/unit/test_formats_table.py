from pathlib import Path

import pytest

from runtime_py.errors import UsageError
from sdk_builder.formats import FORMATS, TARGETS, formats_markdown_table, plan_target
from sdk_builder.quantize.recipes import names as recipe_names


def test_every_row_names_an_existing_module_and_known_recipes():
    root = Path(__file__).resolve().parents[2] / "sdk_builder" / "formats"
    for fmt in FORMATS:
        assert (root / f"{fmt.module}.py").is_file(), fmt.module
        assert set(fmt.recipes) <= set(recipe_names()), fmt.name


def test_targets_use_only_recipes_their_formats_accept():
    for target in TARGETS:
        for fmt, recipe in plan_target(target):
            assert recipe in fmt.recipes


def test_android_plan():
    plan = [(f.name, r) for f, r in plan_target("android")]
    assert plan == [("executorch-xnnpack", "fp32"), ("executorch-xnnpack", "int8-static"),
                    ("litert", "fp32"), ("litert", "int8-static")]


def test_recipe_narrows_the_plan():
    assert [(f.name, r) for f, r in plan_target("all", ["fp16"])] == \
        [("litert", "fp16"), ("coreml", "fp16"), ("executorch-coreml", "fp16")]
    assert [(f.name, r) for f, r in plan_target("android", ["int8da-w4g32"])] == \
        [("executorch-xnnpack", "int8da-w4g32")]


def test_unknown_target_and_recipe_suggest_the_closest():
    with pytest.raises(UsageError, match="did you mean 'android'"):
        plan_target("andriod")
    with pytest.raises(UsageError, match="did you mean 'int8-static'.*accept: fp16, fp32, "
                                         "int8-dynamic, int8-static, int8-static-per-tensor, "
                                         "int8da-w4g32, w8$"):
        plan_target("android", ["int8-statc"])


def test_artifact_names_are_unique_within_a_target():
    for target in TARGETS:
        names = [f.artifact_name("m", r) for f, r in plan_target(target)]
        assert len(names) == len(set(names)), target


def test_readme_carries_the_generated_formats_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert formats_markdown_table() in readme, "regenerate: python -m sdk_builder.readme"


def test_readme_generated_blocks_are_current():
    """The zoo table (from the cards) and the formats table: regenerated, the README is unchanged."""
    from sdk_builder.readme import render

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert render(readme) == readme, "regenerate: python -m sdk_builder.readme"


def test_file_name_tag_runtime_and_delegate_of_every_format():
    """The tag only names files (users select artifacts by them); the delegate is what the
    runtime hands ops to, and goes into the manifest as the artifact's "delegate" (null: none)."""
    rows = {f.name: (f.tag, f.runtime, f.delegate) for f in FORMATS}
    assert rows == {"executorch-xnnpack": ("xnnpack", "executorch", "xnnpack"),
                    "litert": ("litert", "litert", "xnnpack"),
                    "coreml": ("coreml", "coreml", None),
                    "executorch-coreml": ("coreml", "executorch", "coreml")}
    names = {f.name: f.artifact_name("skipnet_m", f.recipes[0]) for f in FORMATS}
    assert names == {"executorch-xnnpack": "skipnet_m.xnnpack.fp32.pte",
                     "litert": "skipnet_m.litert.fp32.tflite",
                     "coreml": "skipnet_m.coreml.fp16.mlpackage",
                     "executorch-coreml": "skipnet_m.coreml.fp16.pte"}
