"""Runtime backends: one module per runtime, one row per module in RUNTIMES.

Each module `runtime_py.backends.<name>` implements the same interface:

    Backend(path: Path, threads: int | None = None)     # opens the artifact
    Backend.run(inputs: list[np.ndarray]) -> list[np.ndarray]   # float32 in, float32 out
    Backend.input_shapes, Backend.output_shapes, Backend.label  # e.g. "coreml/emulated"
    available(entry: dict) -> bool     # can this machine run the artifact a manifest entry names?
    emulated(entry: dict) -> bool      # would it run in an emulator (numbers, not phone speed)?
    describe(path: Path) -> dict       # what the file holds, read without running it

Session, verification and bench ask these functions; none of them tests a runtime's name.
Modules import their runtime lazily, so `import runtime_py` stays fast.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from runtime_py.errors import PocketError, UsageError, did_you_mean


@dataclass(frozen=True)
class Runtime:
    name: str                       # the module name and the manifest's artifact "runtime"
    suffixes: tuple[str, ...]       # artifact file suffixes it opens

    def module(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.name}")


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("executorch", (".pte",)),
    Runtime("litert", (".tflite",)),
    Runtime("coreml", (".mlpackage",)),
)
BACKENDS = tuple(r.name for r in RUNTIMES)
RUNTIME_BY_SUFFIX = {suffix: r.name for r in RUNTIMES for suffix in r.suffixes}


class Backend(Protocol):
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    label: str

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def runtime(name: str) -> Runtime:
    for row in RUNTIMES:
        if row.name == name:
            return row
    raise UsageError(f"unknown runtime '{name}'{did_you_mean(name, BACKENDS)}")


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
    return runtime(kind).module().Backend(Path(path), threads=threads)


def can_run(entry: dict) -> bool:
    """Whether this machine has the runtime (and delegate) an artifact entry needs."""
    return runtime(entry["runtime"]).module().available(entry)


def is_emulated(entry: dict) -> bool:
    """Whether the artifact runs here in an emulator (right numbers, no phone timings)."""
    return runtime(entry["runtime"]).module().emulated(entry)


def describe(kind: str, path: Path) -> dict:
    """What an artifact file holds, read without running it."""
    return runtime(kind).module().describe(Path(path))
