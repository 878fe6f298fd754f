"""Runtime backends: one module per runtime, each with a class `Backend`:

    Backend(path: Path, threads: int | None = None)
    Backend.run(inputs: list[np.ndarray]) -> list[np.ndarray]   # float32 in, float32 out

Modules import their runtime lazily, so `import runtime_py` stays fast.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

from runtime_py.errors import PocketError, UsageError, did_you_mean

BACKENDS = ("executorch", "litert", "coreml")


class Backend(Protocol):
    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def check_flatbuffer_identifier(path: Path, identifier: bytes, what: str) -> None:
    """Refuse a file whose flatbuffer file identifier (bytes 4..) is not `identifier`
    before a native loader sees it; the loaders verify the rest themselves."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4 + len(identifier))
    except OSError as exc:
        raise PocketError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[4:] != identifier:
        raise PocketError(f"{path.name} is not {what} file (empty or bad header); "
                          "re-export it or check the download")


def open_backend(kind: str, path: Path, threads: int | None = None) -> Backend:
    if kind not in BACKENDS:
        raise UsageError(f"unknown runtime '{kind}'{did_you_mean(kind, BACKENDS)}")
    return importlib.import_module(f"{__name__}.{kind}").Backend(Path(path), threads=threads)


def can_run(entry: dict) -> bool:
    """Whether this machine has the runtime (and delegate) an artifact entry needs."""
    import sys

    apple = sys.platform == "darwin"
    if entry["runtime"] == "coreml" or entry.get("backend") == "coreml":
        return apple
    return True
