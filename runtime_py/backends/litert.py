"""LiteRT backend: runs a .tflite with ai_edge_litert's Interpreter (CPU, XNNPACK delegate
applied by default). Tensors are allocated once; run() sets inputs, invokes, copies outputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime_py.backends import check_flatbuffer_identifier
from runtime_py.errors import PocketError, one_line


_TFLITE_IDENTIFIER = b"TFL3"    # flatbuffer file identifier, bytes 4..8


def check_header(path: Path) -> None:
    """Refuse a file that is not a TFLite flatbuffer (the Interpreter then runs the
    flatbuffers verifier on the whole model)."""
    check_flatbuffer_identifier(path, _TFLITE_IDENTIFIER, "a LiteRT .tflite")


def available(entry: dict) -> bool:
    return True


def emulated(entry: dict) -> bool:
    return False


def describe(path: Path) -> dict:
    """Inputs and outputs of a .tflite (LiteRT Interpreter, no invoke)."""
    backend = Backend(path)
    return {"inputs": [{"shape": list(s)} for s in backend.input_shapes],
            "outputs": [{"shape": list(s)} for s in backend.output_shapes]}


class Backend:
    """A loaded .tflite model's default signature."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise PocketError(f"LiteRT model not found: {self.path}")
        check_header(self.path)
        try:
            interp = Interpreter(model_path=str(self.path), num_threads=threads)
            interp.allocate_tensors()
        except Exception as exc:
            raise PocketError(f"cannot load LiteRT model {self.path.name}: {one_line(exc)}; "
                              "the file may be corrupt or need newer LiteRT ops") from None
        self._interp = interp
        self.label = "litert"
        inputs, outputs = interp.get_input_details(), interp.get_output_details()
        self._inputs = [(d["index"], tuple(int(v) for v in d["shape"]), d["dtype"]) for d in inputs]
        self._outputs = [d["index"] for d in outputs]
        self.input_shapes = [s for _, s, _ in self._inputs]
        self.output_shapes = [tuple(int(v) for v in d["shape"]) for d in outputs]
        self._set, self._get, self._invoke = interp.set_tensor, interp.get_tensor, interp.invoke

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
