"""ExecuTorch backend: runs a .pte with the ExecuTorch C++ runtime (pybindings).

The program is loaded and the "forward" method resolved once; run() only wraps the numpy
inputs as tensors (no copy), executes, and turns the (already cloned) outputs back into
numpy arrays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime_py.backends import check_flatbuffer_identifier
from runtime_py.errors import PocketError, UnsupportedError, one_line

_FLOAT = 6          # executorch ScalarType::Float
_PTE_IDENTIFIER = b"ET"
_APPLE_BACKENDS = {"CoreMLBackend": "Core ML", "MPSBackend": "MPS"}


def available(entry: dict) -> bool:
    """XNNPACK programs run anywhere; Core ML- or MPS-delegated ones need an Apple OS."""
    import sys

    return entry.get("backend") not in ("coreml", "mps") or sys.platform == "darwin"


def emulated(entry: dict) -> bool:
    return False


def set_threads(threads: int) -> None:
    """Resize the ExecuTorch CPU threadpool (process-wide; XNNPACK uses it)."""
    from executorch.extension.pybindings import portable_lib

    portable_lib._unsafe_reset_threadpool(int(threads))


def describe(path: Path) -> dict:
    """What a .pte holds, read from its flatbuffer without loading it or importing torch:
    {"methods": [...], "delegates": ["XnnpackBackend", ...], "delegate_count": n,
     "operators": [non-delegated kernels, e.g. "aten::add.out"]}.
    """
    path = Path(path)
    data = _read_pte(path)
    try:
        program = _table(data, _root(data))
        methods, delegates, operators = [], [], set()
        for plan in _vector(program, 1):                         # Program.execution_plan
            methods.append(_string(plan, 0))                     # ExecutionPlan.name
            delegates.extend(_string(d, 0) for d in _vector(plan, 7))    # .delegates[].id
            for op in _vector(plan, 6):                          # .operators[]
                name, overload = _string(op, 0), _string(op, 1)
                operators.add(f"{name}.{overload}" if overload else name)
    except Exception as exc:  # malformed flatbuffer
        raise PocketError(f"{path.name} is not a readable ExecuTorch program ({one_line(exc)}); "
                          "re-export it") from None
    return {"methods": methods, "delegates": sorted(set(delegates)),
            "delegate_count": len(delegates), "operators": sorted(operators)}


# A minimal reader for the few Program fields describe() needs (schema: executorch
# exir/_serialize/program.fbs). The generated Python bindings shipped in executorch 1.4.1
# are broken (ExecutionPlan() resolves to a module) and exir's deserializer imports torch.
def _root(data: bytes) -> int:
    import flatbuffers

    return flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0)


def _table(data: bytes, pos: int) -> Any:
    from flatbuffers.table import Table

    return Table(data, pos)


def _field(tab: Any, index: int) -> int:
    return tab.Offset(4 + 2 * index)


def _string(tab: Any, index: int) -> str:
    off = _field(tab, index)
    return tab.String(off + tab.Pos).decode() if off else ""


def _vector(tab: Any, index: int) -> list:
    from flatbuffers.table import Table

    off = _field(tab, index)
    if not off:
        return []
    start, n = tab.Vector(off), tab.VectorLen(off)
    return [Table(tab.Bytes, tab.Indirect(start + 4 * i)) for i in range(n)]


def check_header(path: Path) -> None:
    """Refuse a file without the .pte flatbuffer identifier (the native loader then
    verifies the flatbuffer and the segment table itself)."""
    check_flatbuffer_identifier(path, _PTE_IDENTIFIER, "an ExecuTorch .pte")


def _read_pte(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PocketError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) < 8 or data[4:6] != _PTE_IDENTIFIER:
        raise PocketError(f"{path.name} is not an ExecuTorch .pte file (bad header); "
                          "re-export it or check the download")
    return data


def _missing_backends(path: Path) -> list[str]:
    """Delegate backends the program needs that this runtime does not have."""
    from executorch.runtime import Runtime

    try:
        needed = describe(path)["delegates"]
    except PocketError:
        return []
    registry = Runtime.get().backend_registry
    return [b for b in needed if not registry.is_available(b)]


def _missing_kernels(path: Path) -> list[str]:
    """Non-delegated operators of the program that no registered kernel implements."""
    from executorch.extension.pybindings import portable_lib

    try:
        needed = describe(path)["operators"]
    except PocketError:
        return []
    registered = set(portable_lib._get_operator_names())
    return [op for op in needed if op not in registered]


class Backend:
    """A loaded .pte program's "forward" method."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import torch  # the pybindings need torch loaded first; run() uses torch.from_numpy
        from executorch.runtime import Runtime

        self.path = Path(path)
        if not self.path.is_file():
            raise PocketError(f"ExecuTorch program not found: {self.path}")
        check_header(self.path)
        if threads:
            set_threads(threads)
        try:
            program = Runtime.get().load_program(self.path)
            method = program.load_method("forward")
            meta = method.metadata
        except Exception as exc:
            raise self._load_error(exc) from None
        self._program = program                       # keeps the program alive
        self.label = "executorch"
        # the pybind method itself (Method.execute only forwards to it): fewest hops per call
        self._call = getattr(method, "_method", None) or method.execute
        self.input_shapes = [tuple(meta.input_tensor_meta(i).sizes())
                             for i in range(meta.num_inputs())]
        self.output_shapes = [tuple(meta.output_tensor_meta(i).sizes())
                              for i in range(meta.num_outputs())]
        self._from_numpy = torch.from_numpy

    def _load_error(self, exc: BaseException) -> PocketError:
        missing = _missing_backends(self.path)
        apple = [_APPLE_BACKENDS[b] for b in missing if b in _APPLE_BACKENDS]
        if apple:
            return UnsupportedError(
                f"{self.path.name}: the {' and '.join(apple)} delegate is not available in this "
                f"ExecuTorch runtime; run it on iOS/macOS, or use the XNNPACK .pte here")
        if missing:
            return UnsupportedError(f"{self.path.name} needs ExecuTorch backend(s) "
                                    f"{', '.join(missing)} that this runtime lacks")
        _read_pte(self.path)  # raises a clearer error for a non-.pte file
        kernels = _missing_kernels(self.path)
        if kernels:
            return UnsupportedError(f"{self.path.name} needs operator(s) {', '.join(kernels)} that "
                                    "this ExecuTorch runtime has no kernel for")
        return PocketError(f"cannot load ExecuTorch program {self.path.name}: {one_line(exc)}; "
                           "the file may be corrupt or from an incompatible ExecuTorch version")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """float32 arrays in (shapes as exported), float32 arrays out."""
        if len(inputs) != len(self.input_shapes):
            raise PocketError(f"{self.path.name} takes {len(self.input_shapes)} input(s), "
                              f"got {len(inputs)}")
        tensors: list[Any] = []
        for x, shape in zip(inputs, self.input_shapes):
            if x.shape != shape or x.dtype != np.float32:
                raise PocketError(f"{self.path.name} expects float32 {list(shape)}, got "
                                  f"{x.dtype} {list(x.shape)}")
            tensors.append(self._from_numpy(np.ascontiguousarray(x)))
        try:
            outputs = self._call(tensors)
        except RuntimeError as exc:
            raise PocketError(f"ExecuTorch failed running {self.path.name}: {one_line(exc)}; "
                              "the file may be corrupt: check it with `pocket verify`") from None
        return [t.numpy() for t in outputs]
