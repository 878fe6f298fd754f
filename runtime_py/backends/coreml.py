"""Core ML backend: predicts with coremltools on macOS 14+; elsewhere it refuses with an
UnsupportedError. describe() reads an .mlpackage's interface on any OS (no prediction).
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np

from runtime_py.errors import PocketError, UnsupportedError

_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32"}


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


def _load_spec(path: Path):
    import coremltools as ct

    check_package(path)
    try:
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    except Exception as exc:
        raise PocketError(f"cannot read Core ML model {path.name}: "
                          f"{' '.join(str(exc).split())[:200]}; re-export it") from None


def _features(features) -> list[dict]:
    rows = []
    for f in features:
        arr = f.type.multiArrayType
        rows.append({"name": f.name,
                     "shape": [int(d) for d in arr.shape],
                     "dtype": _ARRAY_DTYPES.get(arr.dataType, str(arr.dataType))})
    return rows


def describe(path: Path) -> dict:
    """{"inputs": [{name, shape, dtype}], "outputs": [...], "model_type", "spec_version",
    "ops": {op type: count}} of an .mlpackage/.mlmodel, readable on any OS."""
    path = Path(path)
    spec = _load_spec(path)
    kind = spec.WhichOneof("Type")
    ops: dict[str, int] = {}
    if kind == "mlProgram":
        for fn in spec.mlProgram.functions.values():
            for block in fn.block_specializations.values():
                for op in block.operations:
                    ops[op.type] = ops.get(op.type, 0) + 1
    return {"inputs": _features(spec.description.input),
            "outputs": _features(spec.description.output),
            "model_type": kind, "spec_version": int(spec.specificationVersion), "ops": ops}


class Backend:
    """Core ML prediction (macOS 14+ only)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = Path(path)
        check_package(self.path)
        if _macos_major() < 14:
            raise UnsupportedError(
                "Core ML prediction needs macOS 14+ with coremltools; on Linux use the "
                ".pte/.tflite artifacts (a Core ML emulator comes later)")
        import coremltools as ct

        if not self.path.exists():
            raise PocketError(f"Core ML model not found: {self.path}")
        try:
            self._model = ct.models.MLModel(str(self.path))
        except Exception as exc:
            raise PocketError(f"cannot load Core ML model {self.path.name}: "
                              f"{' '.join(str(exc).split())[:200]}") from None
        spec = self._model.get_spec()
        self._in = [f["name"] for f in _features(spec.description.input)]
        self._out = [f["name"] for f in _features(spec.description.output)]
        # threads: Core ML schedules its own compute units; nothing to set.

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != len(self._in):
            raise PocketError(f"{self.path.name} takes {len(self._in)} input(s), got {len(inputs)}")
        result = self._model.predict(dict(zip(self._in, inputs)))
        return [np.asarray(result[name], dtype=np.float32) for name in self._out]
