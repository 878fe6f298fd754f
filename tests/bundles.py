"""The bundles the test suite builds: the one place that lists them, and their builder.

Each bundle is built once per test run, on first use, with the CLI as users run it
(`pocket build ARGS -o <session folder>`), and shared by every test that needs it (the
`bundle` fixture of tests/export/conftest.py). Tests must not modify a shared bundle: copy
it first (shutil.copytree) when a test damages, re-benchmarks or rebuilds one.

A test that needs a zoo bundle adds its `pocket build` arguments here rather than building
its own copy; the README test (tests/export/test_readme_examples.py) runs a README
`pocket build` command whose arguments are one of these from the shared bundle.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from models import registry
from sdk_builder.formats import get_format
from tests.tools.cli import pocket

CORE_ML_RECIPES = tuple(get_format("coreml").recipes)     # the formats table is the one list


def _ios_every_core_ml_recipe(model: str) -> list[str]:
    """--target ios with every Core ML recipe: the .mlpackage in each, the Core ML-delegated
    .pte in those it offers (tests/export/test_zoo_core_ml.py checks them all)."""
    return [model, "--target", "ios", *(a for r in CORE_ML_RECIPES for a in ("-r", r))]


# bundle folder name -> `pocket build` arguments (without -o); the name is <model>-<target>,
# the folder `pocket build` writes.
BUNDLES: dict[str, list[str]] = {
    "skipnet_m-android": ["skipnet_m", "--target", "android"],      # README, test_build_skipnet
    "epe_edanet-android": ["epe_edanet", "--target", "android"],    # README, test_build_epe_edanet
    **{f"{name}-ios": _ios_every_core_ml_recipe(name) for name in registry.names()},  # test_zoo_core_ml
}


def by_arguments(args: list[str] | tuple[str, ...]) -> str | None:
    """The shared bundle that `pocket build ARGS` (no -o) builds, or None."""
    return next((name for name, known in BUNDLES.items() if list(args) == known), None)


class SharedBundles:
    """bundles(name) -> the path of shared bundle `name`, built into `root` on first use."""

    def __init__(self, root: Path, build=pocket) -> None:
        self.root = Path(root)
        self._build = build
        self._runs: dict[str, subprocess.CompletedProcess] = {}
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> Path:
        if name not in BUNDLES:
            raise KeyError(f"{name!r} is not a shared bundle; add its `pocket build` arguments to "
                           f"BUNDLES in tests/bundles.py (known: {', '.join(BUNDLES)})")
        path = self.root / name
        if name not in self._runs:
            start = time.monotonic()
            proc = self._build("build", *BUNDLES[name], "-o", str(self.root))
            self.seconds[name] = time.monotonic() - start
            self._runs[name] = proc
            assert proc.returncode == 0, f"pocket build {' '.join(BUNDLES[name])}:\n{proc.stderr[-3000:]}"
            assert (path / "manifest.json").is_file(), f"pocket build {' '.join(BUNDLES[name])} wrote no {path}"
        elif self._runs[name].returncode != 0:      # failed once: fail fast, do not rebuild
            raise AssertionError(f"shared bundle {name} failed to build earlier in this run:\n"
                                 f"{self._runs[name].stderr[-3000:]}")
        return path

    def output(self, name: str) -> str:
        """What `pocket build` printed on stdout for bundle `name` (its summary table)."""
        self(name)
        return self._runs[name].stdout

    def summary(self) -> str:
        """One line: the bundles built in this run and how long each took."""
        done = [f"{name} ({self.seconds[name]:.0f} s{'' if proc.returncode == 0 else ', FAILED'})"
                for name, proc in self._runs.items()]
        return f"shared bundles built once in {self.root}: {', '.join(done) or 'none'}"
