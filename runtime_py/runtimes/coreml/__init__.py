"""Core ML runtime: predicts with Core ML (coremltools) on macOS 14+, and elsewhere runs
the ML program in runtime_py's own interpreter (runtime_py.runtimes.coreml.interpreter: numpy
kernels, fp16 rounded after each op), labelled "coreml/emulated". describe() reads an
.mlpackage's interface and op counts on any OS without coremltools.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtime_py.runtimes import one_by_one, shape_problems
from runtime_py.errors import PocketError

NATIVE = False      # the interpreter is numpy: a corrupt package raises, it cannot crash


def _macos_major() -> int:
    if sys.platform != "darwin":
        return 0
    try:
        return int(platform.mac_ver()[0].split(".")[0])
    except ValueError:
        return 0


def check_package(path: Path) -> None:
    """Refuse what is not an .mlpackage folder with a readable Manifest.json (or an .mlmodel
    file) before coremltools sees it."""
    import json

    if not path.exists():
        raise PocketError(f"Core ML model not found: {path}")
    if path.suffix == ".mlmodel" and path.is_file():
        return
    if not path.is_dir():
        raise PocketError(f"{path.name} is not a Core ML package (an .mlpackage is a folder); "
                          "re-export it or check the download")
    try:
        items = json.loads((path / "Manifest.json").read_text(encoding="utf-8"))["itemInfoEntries"]
        if not isinstance(items, dict) or not items:
            raise ValueError("no items")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise PocketError(f"{path.name} is not a readable Core ML package (Manifest.json missing "
                          "or corrupt); re-export it") from None


def available(entry: dict) -> bool:
    """Core ML on macOS 14+, the interpreter everywhere else: an ML program always runs."""
    return True


def emulated(entry: dict) -> bool:
    return _macos_major() < 14


def describe(path: Path) -> dict:
    """{"inputs": [{name, shape, dtype}], "outputs": [...], "model_type", "spec_version",
    "ops": {op type: count}} of an .mlpackage, read without coremltools (any OS)."""
    from runtime_py.runtimes.coreml.program import read_package

    path = Path(path)
    check_package(path)
    program = read_package(path)
    ops: dict[str, int] = {}
    for op in program.ops:
        ops[op.type] = ops.get(op.type, 0) + 1

    def rows(specs) -> list[dict]:
        return [{"name": t.name, "shape": [int(d) for d in t.shape if d is not None], "dtype": t.dtype}
                for t in specs]

    return {"inputs": rows(program.inputs), "outputs": rows(program.outputs),
            "model_type": "mlProgram", "spec_version": program.specification_version, "ops": ops}


def set_threads(threads: int) -> None:
    """Nothing to set: Core ML schedules its own compute units, the interpreter uses numpy's."""


def check_structure(structure: dict, manifest: dict, entry: dict) -> list[str]:
    """Problems visible without running (`structure`: describe()'s answer): interface
    shapes against the manifest."""
    return shape_problems(structure, manifest)


def delegation(path: Path) -> dict:
    """Core ML places ops on CPU/GPU/Neural Engine itself, at load time on the device."""
    return {}


def profile(path: Path, example: np.ndarray, iters: int = 20, threads: int = 1) -> dict:
    from runtime_py.op_profile import unavailable

    return unavailable("coreml", "Core ML per-op timings need Xcode's Core ML Instruments on a "
                                 "Mac; the emulator's timings say nothing about a phone")


class _CoreMLPredict:
    """Core ML prediction through coremltools (macOS 14+ only)."""

    def __init__(self, path: Path) -> None:
        import coremltools as ct

        try:
            self._model = ct.models.MLModel(str(path))
        except Exception as exc:
            raise PocketError(f"cannot load Core ML model {path.name}: "
                              f"{' '.join(str(exc).split())[:200]}") from None
        spec = self._model.get_spec()
        self._in = [f.name for f in spec.description.input]
        self._out = [f.name for f in spec.description.output]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        result = self._model.predict(dict(zip(self._in, inputs)))
        return [np.asarray(result[name], dtype=np.float32) for name in self._out]

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return one_by_one(self.run, inputs)


class Runner:
    """An ML program: Core ML on macOS 14+, the interpreter elsewhere (see `label`)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from runtime_py.runtimes.coreml.interpreter import Interpreter

        self.path = Path(path)
        check_package(self.path)
        program = Interpreter(self.path, threads=threads)   # reads, binds; refuses uncovered ops
        self.input_shapes = [tuple(int(d) for d in s) for s in program.input_shapes]
        self.output_shapes = [tuple(int(d) for d in s if d is not None) for s in program.output_shapes]
        self.input_names = [t.name for t in program.program.inputs]
        self.output_names = [t.name for t in program.program.outputs]
        if _macos_major() >= 14:
            self._impl, self.label = _CoreMLPredict(self.path), "coreml"
        else:
            self._impl, self.label = program, "coreml/emulated"
        # threads: Core ML schedules its own compute units; the interpreter gives them to BLAS

    def raw_call(self, inputs: list[np.ndarray]) -> Callable[[], Any]:
        """The bare call on these inputs: no checks (bench)."""
        run = self._impl.run
        return lambda: run(inputs)

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self._check(inputs, batch=False)
        return self._impl.run_samples(inputs)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self._check(inputs)
        return self._impl.run(inputs)

    def _check(self, inputs: list[np.ndarray], batch: bool = True) -> None:
        """Refuse inputs of the wrong count or shape (any leading size when not `batch`)."""
        if len(inputs) != len(self.input_shapes):
            raise PocketError(f"{self.path.name} takes {len(self.input_shapes)} input(s), got {len(inputs)}")
        for x, shape in zip(inputs, self.input_shapes):
            got = tuple(x.shape) if batch else (shape[0], *x.shape[1:])
            if got != shape or (not batch and x.shape[0] != inputs[0].shape[0]):
                raise PocketError(f"{self.path.name} expects float32 {list(shape)}, got {x.dtype} {list(x.shape)}")
