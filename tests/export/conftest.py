"""Bundles several export test files read, built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from sdk_builder.formats import get_format
from tests.tools.cli import pocket

CORE_ML_RECIPES = get_format("coreml").recipes      # the formats table is the one list


@pytest.fixture(scope="session")
def zoo_ios_bundle(tmp_path_factory):
    """zoo_ios_bundle(name) -> `pocket build name --target ios` with every Core ML recipe
    (both Core ML formats), built on first use and kept for the session."""
    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            out = tmp_path_factory.mktemp(f"{name}-ios")
            recipes = [arg for r in CORE_ML_RECIPES for arg in ("-r", r)]
            proc = pocket("build", name, "--target", "ios", *recipes, "-o", str(out))
            assert proc.returncode == 0, proc.stderr[-3000:]
            built[name] = out / f"{name}-ios"
        return built[name]
    return build
