"""Every (format, recipe) pair the formats table offers is built through the CLI somewhere
in the suite, on a model it applies to: by a shared bundle (tests/bundles.py) or by
tests/export/test_every_recipe.py. A recipe or format added without a build fails here."""
from __future__ import annotations

from sdk_builder.formats import FORMATS, plan_target
from tests import bundles
from tests.export import test_every_recipe


def _plan(args: list[str]) -> set[tuple[str, str]]:
    """The (format, recipe) pairs `pocket build ARGS` builds (no --max-drop)."""
    target, recipes = "android", []
    for flag, value in zip(args, args[1:]):
        if flag in ("--target", "-t"):
            target = value
        elif flag in ("--recipe", "-r"):
            recipes.append(value)
    return {(f.name, r) for f, r in plan_target(target, recipes or None)}


def test_every_offered_recipe_is_built_through_the_cli():
    built = set().union(*(_plan(args) for args in bundles.BUNDLES.values()))
    built |= _plan(["-t", "android", *(a for r in test_every_recipe.RECIPES for a in ("-r", r))])
    offered = {(f.name, r) for f in FORMATS for r in f.recipes}
    assert offered - built == set(), "add a CLI build of these to tests/bundles.py or test_every_recipe"


def test_the_plan_reader_reads_targets_and_recipes():
    assert _plan(["m", "--target", "ios", "-r", "w8"]) == {("coreml", "w8"), ("executorch-coreml", "w8")}
    assert ("litert", "int8-static") in _plan(["m"])
