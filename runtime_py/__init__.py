"""Run Pocket Vision bundles on a desktop exactly as a phone would.

    import runtime_py
    session = runtime_py.load("dist/skipnet_m-android")
    session.run("digit.png")   # -> top-k labels with scores

Never imports sdk_builder or models: a bundle is enough to run.
"""
from runtime_py.errors import PocketError

__all__ = ["load", "PocketError"]


def load(path, artifact=None, *, threads=None, check_integrity=True, probe=None):
    """Load a bundle folder (or one artifact file) and return a Session.

    check_integrity: check every artifact's sha256 against the manifest (default).
    probe: load + run the artifact once in a child process first, so a corrupt file cannot
    crash this one; default: only when its sha256 was not checked (see session.load)."""
    from runtime_py.session import load as _load

    return _load(path, artifact=artifact, threads=threads, check_integrity=check_integrity, probe=probe)
