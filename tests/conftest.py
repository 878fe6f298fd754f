"""Shared fixtures (a minimal valid manifest for unit tests) and the test tiers.

Tiers = folders = markers: a test's folder under tests/ names its tier and gives it that
marker (pyproject.toml declares them), so `pytest -m "unit or golden"` selects by folder.
A test outside a tier folder, or marked with another tier than its folder's, stops the run.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "golden", "export", "reliability", "apps")


def tier_of(path: str | Path) -> str | None:
    """The tier of a test file: its first folder under tests/ if that is a tier, else None."""
    try:
        parts = Path(path).resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def tier_problem(nodeid: str, path: str | Path, marker_names: set[str]) -> str | None:
    """One line saying why a test's tier is wrong, or None when its folder decides it."""
    tier = tier_of(path)
    if tier is None:
        return (f"{nodeid}: not in a tier folder; put it under tests/<tier>/ "
                f"(tiers: {', '.join(TIERS)})")
    other = sorted(marker_names & set(TIERS) - {tier})
    if other:
        return (f"{nodeid}: marked {', '.join(other)} but in tests/{tier}/; the folder is the tier: "
                f"drop the mark or move the test")
    return None


@pytest.hookimpl(tryfirst=True)          # before -m deselects by these markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        problem = tier_problem(item.nodeid, item.path, {m.name for m in item.iter_markers()})
        if problem:
            raise pytest.UsageError(problem)
        item.add_marker(tier_of(item.path))


_MANIFEST = {
    "schema_version": 2,
    "created": "2026-01-01T00:00:00+00:00",
    "target": "android",
    "model": {"name": "toy", "task": "classification", "params": 10, "macs": 100,
              "weights_file": None, "weights_sha256": None},
    "input": {"name": "input", "shape": [1, 3, 4, 4], "dtype": "float32", "layout": "NCHW",
              "color": "RGB", "range": [0.0, 1.0], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
              "normalize_in_graph": False, "resize": "bilinear"},
    "outputs": [{"name": "logits", "shape": [1, 3], "dtype": "float32", "meaning": "logits"}],
    "labels_file": None,
    "postprocess": {"kind": "classify", "top_k": 2, "softmax": True},
    "golden": {"inputs": [], "reference": []},
    "artifacts": [],
    "toolchain": {"torch": "2.13.0"},
}


@pytest.fixture
def manifest() -> dict:
    """A fresh copy of a minimal valid manifest."""
    return copy.deepcopy(_MANIFEST)
