"""LiteRT runtime: runs a .tflite with ai_edge_litert's Interpreter (CPU, XNNPACK delegate
applied by default, as on phones: the manifest's artifact "delegate" is "xnnpack"). Tensors are allocated once; run() sets inputs, invokes, copies outputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtime_py import native_log
from runtime_py.runtimes import check_flatbuffer_identifier, one_by_one, shape_problems
from runtime_py.errors import PocketError, one_line


NATIVE = True                   # native code: a corrupt file can crash the process (Session probes)
_TFLITE_IDENTIFIER = b"TFL3"    # flatbuffer file identifier, bytes 4..8


def check_header(path: Path) -> None:
    """Refuse a file that is not a TFLite flatbuffer (the Interpreter then runs the
    flatbuffers verifier on the whole model)."""
    check_flatbuffer_identifier(path, _TFLITE_IDENTIFIER, "a LiteRT .tflite")


def available(entry: dict) -> bool:
    return True


def emulated(entry: dict) -> bool:
    return False


def set_threads(threads: int) -> None:
    """Nothing process-wide: LiteRT takes its thread count per model (Runner(threads=))."""


def describe(path: Path) -> dict:
    """Inputs and outputs of a .tflite (LiteRT Interpreter, no invoke)."""
    runner = Runner(path)
    return {"inputs": [{"shape": list(s)} for s in runner.input_shapes],
            "outputs": [{"shape": list(s)} for s in runner.output_shapes]}


def check_structure(structure: dict, manifest: dict, entry: dict) -> list[str]:
    """Problems visible without running (`structure`: describe()'s answer): interface
    shapes against the manifest."""
    return shape_problems(structure, manifest)


def delegation(path: Path) -> dict:
    """Which ops the XNNPACK delegate takes at run time, read from the runtime."""
    from runtime_py.runtimes.litert.coverage import litert_delegation

    return litert_delegation(path)


def profile(path: Path, example: np.ndarray, iters: int = 20, threads: int = 1) -> dict:
    from runtime_py.runtimes.litert.profiler import profile_litert
    from runtime_py.op_profile import aggregate

    result = profile_litert(path, example, iters, threads)
    return {**result, "ops": aggregate(result["ops"])}


class Runner:
    """A loaded .tflite model's default signature."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise PocketError(f"LiteRT model not found: {self.path}")
        check_header(self.path)
        failure: BaseException | None = None
        with native_log.captured() as log:      # "INFO: Created TensorFlow Lite XNNPACK delegate"
            try:
                interp = Interpreter(model_path=str(self.path), num_threads=threads)
                interp.allocate_tensors()
            except Exception as exc:  # noqa: BLE001 - worded below
                failure = exc
        if failure is not None:
            raise PocketError(f"cannot load LiteRT model {self.path.name}: {one_line(failure)}"
                              f"{log.quote()}; "
                              "the file may be corrupt or need newer LiteRT ops") from None
        self._interp = interp
        self.label = "litert"
        inputs, outputs = interp.get_input_details(), interp.get_output_details()
        self._inputs = [(d["index"], tuple(int(v) for v in d["shape"]), d["dtype"]) for d in inputs]
        self._outputs = [d["index"] for d in outputs]
        self.input_shapes = [s for _, s, _ in self._inputs]
        self.output_shapes = [tuple(int(v) for v in d["shape"]) for d in outputs]
        self._set, self._get, self._invoke = interp.set_tensor, interp.get_tensor, interp.invoke

    def raw_call(self, inputs: list[np.ndarray]) -> Callable[[], Any]:
        """The bare runtime call on these inputs: no checks, no conversions (bench)."""
        pairs = [(index, x) for (index, _, _), x in zip(self._inputs, inputs)]
        set_tensor, invoke, get_tensor, outs = self._set, self._invoke, self._get, self._outputs

        def call() -> Any:
            for index, x in pairs:
                set_tensor(index, x)
            invoke()
            return [get_tensor(i) for i in outs]
        return call

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return one_by_one(self.run, inputs)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """float32 arrays in (shapes as exported), float32 arrays out (copies)."""
        if len(inputs) != len(self._inputs):
            raise PocketError(f"{self.path.name} takes {len(self._inputs)} input(s), "
                              f"got {len(inputs)}")
        for x, (index, shape, dtype) in zip(inputs, self._inputs):
            if x.shape != shape or x.dtype != dtype:
                raise PocketError(f"{self.path.name} expects {np.dtype(dtype).name} {list(shape)}, "
                                  f"got {x.dtype} {list(x.shape)}")
            self._set(index, x)
        try:
            self._invoke()
        except Exception as exc:
            raise PocketError(f"LiteRT failed running {self.path.name}: {one_line(exc)}") from None
        return [self._get(i) for i in self._outputs]      # get_tensor returns a copy
