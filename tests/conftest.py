"""Shared fixtures: a minimal valid manifest for unit tests."""
from __future__ import annotations

import copy

import pytest

_MANIFEST = {
    "schema_version": 1,
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
