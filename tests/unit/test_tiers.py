"""Tiers = folders = markers: every test file sits in a tier folder, pyproject.toml declares
each tier's marker, and tests/conftest.py gives each test its folder's marker and stops the run
when a test is outside a tier folder or carries another tier's marker."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import TESTS, TIERS, tier_of, tier_problem

ROOT = TESTS.parent


def _test_files() -> list[Path]:
    return sorted({*TESTS.rglob("test_*.py"), *TESTS.rglob("*_test.py")})


def test_every_test_file_is_in_a_tier_folder():
    files = _test_files()
    assert len(files) > 50
    stray = [str(p.relative_to(ROOT)) for p in files if tier_of(p) is None]
    assert not stray, f"test files outside tests/<tier>/ (tiers: {', '.join(TIERS)}): {stray}"
    assert {tier_of(p) for p in files} >= {"unit", "golden", "export", "reliability"}


def test_pyproject_declares_every_tier_marker():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    declared = {line.split(":")[0].strip() for line in config["markers"]}
    assert set(TIERS) <= declared
    assert "--strict-markers" in config["addopts"]


def test_the_folder_decides_the_tier():
    assert tier_of(TESTS / "unit" / "test_x.py") == "unit"
    assert tier_of(TESTS / "reliability" / "sub" / "test_x.py") == "reliability"
    assert tier_of(TESTS / "tools" / "test_x.py") is None         # a folder that is no tier
    assert tier_of(TESTS / "test_x.py") is None                   # tests/ itself is no tier
    assert tier_of(ROOT / "sdk_builder" / "test_x.py") is None    # outside tests/
    assert tier_problem("u", TESTS / "unit" / "test_x.py", {"unit", "parametrize"}) is None
    assert tier_problem("u", TESTS / "unit" / "test_x.py", set()) is None
    problem = tier_problem("tests/unit/test_x.py::t", TESTS / "unit" / "test_x.py", {"unit", "export"})
    assert problem and "marked export but in tests/unit/" in problem and "\n" not in problem
    problem = tier_problem("tests/smoke/test_x.py::t", TESTS / "smoke" / "test_x.py", set())
    assert problem and "not in a tier folder" in problem and "\n" not in problem


def _collect(tmp_path: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`pytest --collect-only` on a scratch tree holding a copy of tests/conftest.py."""
    tests = tmp_path / "tests"
    tests.mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    markers = "\n".join(f"    {tier}: tier" for tier in TIERS)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = --strict-markers\nmarkers =\n{markers}\n")
    for rel, text in files.items():
        (tests / rel).parent.mkdir(parents=True, exist_ok=True)
        (tests / rel).write_text(text)
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *args, "tests"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})  # no plugin needed


PLAIN = "def test_a():\n    pass\n"
MARKED_EXPORT = "import pytest\n\n\n@pytest.mark.export\ndef test_a():\n    pass\n"


def test_collection_marks_by_folder_and_stops_on_a_wrong_tier(tmp_path):
    good = _collect(tmp_path / "good", {"unit/test_u.py": PLAIN, "export/test_e.py": PLAIN,
                                        "reliability/test_r.py": PLAIN}, "-m", "unit or reliability")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "unit/test_u.py::test_a" in good.stdout and "reliability/test_r.py::test_a" in good.stdout
    assert "export/test_e.py" not in good.stdout                  # deselected by its folder's marker

    wrong_mark = _collect(tmp_path / "mark", {"unit/test_u.py": MARKED_EXPORT})
    assert wrong_mark.returncode != 0
    assert "test_u.py::test_a: marked export but in tests/unit/" in wrong_mark.stdout + wrong_mark.stderr

    new_folder = _collect(tmp_path / "folder", {"smoke/test_s.py": PLAIN})
    assert new_folder.returncode != 0
    assert "test_s.py::test_a: not in a tier folder" in new_folder.stdout + new_folder.stderr
