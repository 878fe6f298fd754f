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

from runtime_py.errors import UsageError, did_you_mean

BACKENDS = ("executorch", "litert", "coreml")


class Backend(Protocol):
    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


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
