"""Fixtures for the reliability matrix: a tiny real bundle (built once per session)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def toy_bundle(tmp_path_factory) -> Path:
    """A real .pte + .tflite + .mlpackage bundle of a tiny conv net (~20 s, once)."""
    out = tmp_path_factory.mktemp("toy") / "toy-desktop"
    proc = subprocess.run([sys.executable, str(ROOT / "tests/tools/make_toy_bundle.py"), str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture
def bundle_copy(toy_bundle, tmp_path) -> Path:
    """A private copy of the toy bundle, free to damage."""
    return Path(shutil.copytree(toy_bundle, tmp_path / "toy-desktop"))
