"""The runtimes: one package per runtime, one row per package in RUNTIMES.

Words: a *runtime* runs an artifact (ExecuTorch, LiteRT, Core ML, or here our
Core ML interpreter); a *delegate* is what a runtime hands ops to (XNNPACK, the Core ML
delegate), the manifest's artifact "delegate". A *runner* is one artifact opened in its runtime.

Each package `runtime_py.runtimes.<name>` implements the same interface:

    Runner(path: Path, threads: int | None = None)      # opens the artifact in the runtime
      .run(inputs: list[np.ndarray]) -> list[np.ndarray]   # float32 in, float32 out
      .raw_call(inputs) -> () -> Any     # the bare runtime call, no checks (bench overhead)
      .run_samples(inputs) -> outputs    # N samples ([N, ...] each) as N runs give them
      .input_shapes, .output_shapes, .label                # label e.g. "coreml/emulated"
    NATIVE: bool                       # native code a corrupt file can crash (Session probes it)
    available(entry: dict) -> bool     # can this machine run the artifact a manifest entry names?
    emulated(entry: dict) -> bool      # would it run in an emulator (numbers, not phone speed)?
    describe(path: Path) -> dict       # what the file holds, read without running it
    check_structure(structure, manifest, entry) -> list[str]   # describe()'s answer vs manifest
    delegation(path: Path) -> dict     # delegate coverage read back from the file ({} if none)
    set_threads(threads: int) -> None  # process-wide pools (a no-op where threads are per model)
    profile(path, example, iters, threads) -> dict        # per-op times (runtime_py.op_profile)

Session, verification and bench ask these functions; none of them tests a runtime's name.
Packages import their runtime lazily, so `import runtime_py` stays fast. Adding a runtime
is one package plus one RUNTIMES row; everything else reads the registry (toolchain versions,
bench threads, the reliability toy bundle), and tests name what cannot: the manifest schema's
runtime enum (tests/unit/test_runtimes.py) and the damage matrix of
tests/reliability/test_artifacts.py.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol

import numpy as np

from runtime_py.errors import PocketError, UsageError, did_you_mean
from runtime_py.manifest import input_shapes


@dataclass(frozen=True)
class Runtime:
    name: str                       # the package name and the manifest's artifact "runtime"
    suffixes: tuple[str, ...]       # artifact file suffixes it opens
    distributions: tuple[str, ...]  # what the runtime is installed as (versions in manifests, bench)

    def module(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.name}")


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("executorch", (".pte",), ("executorch",)),
    Runtime("litert", (".tflite",), ("ai-edge-litert",)),
    Runtime("coreml", (".mlpackage",), ("coremltools",)),
)
RUNTIME_NAMES = tuple(r.name for r in RUNTIMES)
RUNTIME_BY_SUFFIX = {suffix: r.name for r in RUNTIMES for suffix in r.suffixes}


class Runner(Protocol):
    """One artifact opened in its runtime (what `open_runner` returns)."""

    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    label: str

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...

    def raw_call(self, inputs: list[np.ndarray]) -> Callable[[], Any]: ...

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def one_by_one(run: Callable[[list[np.ndarray]], list[np.ndarray]],
               inputs: list[np.ndarray]) -> list[np.ndarray]:
    """`run_samples` for a program of batch 1: N samples ([N, ...] per input) run one at a
    time, their outputs stacked ([N, ...] per output)."""
    results = [run([x[i:i + 1] for x in inputs]) for i in range(int(inputs[0].shape[0]))]
    return [np.concatenate(parts) for parts in zip(*results)]


def runtime(name: str) -> Runtime:
    for row in RUNTIMES:
        if row.name == name:
            return row
    raise UsageError(f"unknown runtime '{name}'{did_you_mean(name, RUNTIME_NAMES)}")


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


def open_runner(kind: str, path: Path, threads: int | None = None) -> Runner:
    """The artifact at `path` opened in runtime `kind` (a RUNTIMES name)."""
    return runtime(kind).module().Runner(Path(path), threads=threads)


def can_run(entry: dict) -> bool:
    """Whether this machine has the runtime (and delegate) an artifact entry needs."""
    return runtime(entry["runtime"]).module().available(entry)


def is_emulated(entry: dict) -> bool:
    """Whether the artifact runs here in an emulator (right numbers, no phone timings)."""
    return runtime(entry["runtime"]).module().emulated(entry)


def describe(kind: str, path: Path) -> dict:
    """What an artifact file holds, read without running it."""
    return runtime(kind).module().describe(Path(path))


def set_threads(kind: str, threads: int) -> None:
    runtime(kind).module().set_threads(threads)


def delegation(kind: str, path: Path) -> dict:
    return runtime(kind).module().delegation(Path(path))


def profile(kind: str, path: Path, example: np.ndarray, iters: int = 20, threads: int = 1) -> dict:
    return runtime(kind).module().profile(Path(path), example, iters, threads)


def needs_probe(kind: str) -> bool:
    """Whether a file of this runtime could crash the process (native loader)."""
    return bool(runtime(kind).module().NATIVE)


def check_structure(kind: str, structure: dict, manifest: dict, entry: dict) -> list[str]:
    """Problems in `structure` (describe()'s answer for the entry's file) against the manifest."""
    return runtime(kind).module().check_structure(structure, manifest, entry)


def manifest_shapes(manifest: dict) -> list[list[int]]:
    """[input shapes..., output shapes...] the manifest promises."""
    return input_shapes(manifest) + [list(o["shape"]) for o in manifest["outputs"]]


def shape_problems(structure: dict, manifest: dict) -> list[str]:
    """A described file's interface shapes against the manifest's (one message or none)."""
    want = manifest_shapes(manifest)
    got = [list(i["shape"]) for i in structure.get("inputs", [])] + \
          [list(o["shape"]) for o in structure.get("outputs", [])]
    return [] if got == want else [f"input/output shapes {got} differ from the manifest's {want}"]
