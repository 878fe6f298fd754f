"""The shared bundles (tests/bundles.py lists them), built once per session on first use."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.bundles import SharedBundles


_BUILT = pytest.StashKey[SharedBundles]()


@pytest.fixture(scope="session")
def shared_bundle(tmp_path_factory, pytestconfig) -> SharedBundles:
    """shared_bundle("skipnet_m-android") -> the path of that shared bundle (tests/bundles.py),
    built with `pocket build` into one session folder the first time any test asks for it.
    Read it; copy it before changing anything in it."""
    bundles = SharedBundles(tmp_path_factory.mktemp("bundles"))
    pytestconfig.stash[_BUILT] = bundles
    return bundles


def pytest_terminal_summary(terminalreporter, config):
    if _BUILT in config.stash:
        terminalreporter.write_line(config.stash[_BUILT].summary())


@pytest.fixture(scope="session")
def zoo_ios_bundle(shared_bundle):
    """zoo_ios_bundle(name) -> `pocket build name --target ios` with every Core ML recipe
    (both Core ML formats): the shared bundle "<name>-ios"."""
    def build(name: str) -> Path:
        return shared_bundle(f"{name}-ios")
    return build
