"""ExecuTorch runtime: runs a .pte with the ExecuTorch C++ runtime (pybindings).

The runtime is reached through `executorch.extension.pybindings._portable_lib` directly:
`executorch.runtime` (and the public `portable_lib` wrapper) import ExecuTorch's exporter
(`executorch.exir`, ~4 s and a screen of warnings) to run a file. The program is loaded
and "forward" resolved once; run() only wraps the numpy inputs as tensors (no copy),
executes, and turns the (cloned) outputs back into numpy arrays.

A program delegated to Core ML runs where the runtime has no Core ML delegate (anything
but an Apple OS) through runtime_py.runtimes.coreml.delegate: its embedded ML program in the
Core ML emulator, labelled "executorch/coreml/emulated".
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runtime_py import native_log
from runtime_py.runtimes.executorch import pte_file
from runtime_py.runtimes import check_flatbuffer_identifier, one_by_one
from runtime_py.errors import PocketError, UnsupportedError, one_line

NATIVE = True                 # native code: a corrupt file can crash the process (Session probes)
_APPLE_DELEGATES = {"CoreMLBackend": "Core ML", "MPSBackend": "MPS"}   # ExecuTorch delegate ids


def _runtime() -> Any:
    import torch  # noqa: F401 - the pybindings link libtorch and take torch tensors
    from executorch.extension.pybindings import _portable_lib

    return _portable_lib


def _on_apple() -> bool:
    return sys.platform == "darwin"


def available(entry: dict) -> bool:
    """XNNPACK programs run anywhere, Core ML-delegated ones too (emulated off Apple
    OSes); MPS-delegated ones need an Apple OS."""
    return entry.get("delegate") != "mps" or _on_apple()


def emulated(entry: dict) -> bool:
    return entry.get("delegate") == "coreml" and not _on_apple()


def set_threads(threads: int) -> None:
    """Resize the ExecuTorch CPU threadpool (process-wide; XNNPACK uses it)."""
    with native_log.captured():
        _runtime()._unsafe_reset_threadpool(int(threads))


def describe(path: Path) -> dict:
    """What a .pte holds, read from its flatbuffer without loading it or importing torch:
    {"methods": [...], "delegates": ["XnnpackBackend", ...], "delegate_count": n,
     "operators": [non-delegated kernels, e.g. "aten::add.out"]}.
    """
    return pte_file.describe(Path(path))


def check_structure(structure: dict, manifest: dict, entry: dict) -> list[str]:
    """Problems visible without running (`structure`: describe()'s answer): the delegate
    the entry promises is in the file."""
    wanted = {"xnnpack": "XnnpackBackend", "coreml": "CoreMLBackend", "mps": "MPSBackend"}
    delegate_id = wanted.get(entry.get("delegate") or "")
    if delegate_id and delegate_id not in structure["delegates"]:
        return [f"the program holds no {delegate_id} delegate"]
    return []


def delegation(path: Path) -> dict:
    """Recorded at export (the lowering knows the partitions); nothing to read back here."""
    return {}


def profile(path: Path, example: np.ndarray, iters: int = 20, threads: int = 1) -> dict:
    from runtime_py.op_profile import executorch_profile

    return executorch_profile(Path(path), example, iters)


def check_header(path: Path) -> None:
    """Refuse a file without the .pte flatbuffer identifier (the native loader then
    verifies the flatbuffer and the segment table itself)."""
    check_flatbuffer_identifier(path, pte_file.IDENTIFIER, "an ExecuTorch .pte")


def _missing_delegates(path: Path) -> list[str]:
    """Delegates (ExecuTorch ids) the program needs that this runtime does not have."""
    try:
        needed = describe(path)["delegates"]
    except PocketError:
        return []
    registered = set(_runtime()._get_registered_backend_names())
    return [b for b in needed if b not in registered]


def _missing_kernels(path: Path) -> list[str]:
    """Non-delegated operators of the program that no registered kernel implements."""
    try:
        needed = describe(path)["operators"]
    except PocketError:
        return []
    registered = set(_runtime()._get_operator_names())
    return [op for op in needed if op not in registered]


def Runner(path: Path, threads: int | None = None) -> Any:  # noqa: N802 - the protocol's name
    """The loaded program: ExecuTorch itself, or (off Apple OSes, whose ExecuTorch has no
    Core ML delegate) the Core ML emulator on the program's embedded ML program."""
    path = Path(path)
    if not path.is_file():
        raise PocketError(f"ExecuTorch program not found: {path}")
    check_header(path)
    if not _on_apple():
        data = pte_file.read(path)
        if "CoreMLBackend" in pte_file.describe(path, data)["delegates"]:
            from runtime_py.runtimes.coreml.delegate import DelegatedProgram

            return DelegatedProgram(path, threads=threads, data=data)
    return Program(path, threads=threads)


class Program:
    """A loaded .pte program's "forward" method."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = Path(path)
        runtime = _runtime()
        failure: BaseException | None = None
        with native_log.captured() as log:
            try:
                if threads:
                    runtime._unsafe_reset_threadpool(int(threads))
                # InternalConsistency: the flatbuffer verifier (Minimal, the pybindings'
                # default, lets bit flips in the tables through to a crash)
                program = runtime._load_program(
                    str(self.path), program_verification=runtime.Verification.InternalConsistency)
                method = program.load_method("forward")
                meta = method.method_meta()
            except Exception as exc:  # noqa: BLE001 - worded by _load_error below
                failure = exc
        if failure is not None:
            raise self._load_error(failure, log.quote()) from None
        self._program, self._method = program, method      # the method borrows the program
        self.label = "executorch"
        self._call = method.call
        self.input_shapes = [tuple(meta.input_tensor_meta(i).sizes())
                             for i in range(meta.num_inputs())]
        self.output_shapes = [tuple(meta.output_tensor_meta(i).sizes())
                              for i in range(meta.num_outputs())]
        import torch

        self._from_numpy = torch.from_numpy

    def _load_error(self, exc: BaseException, log: str) -> PocketError:
        missing = _missing_delegates(self.path)
        apple = [_APPLE_DELEGATES[d] for d in missing if d in _APPLE_DELEGATES]
        if apple:
            return UnsupportedError(
                f"{self.path.name}: the {' and '.join(apple)} delegate is not available in this "
                f"ExecuTorch runtime; run it on iOS/macOS, or use the XNNPACK .pte here")
        if missing:
            return UnsupportedError(f"{self.path.name} needs ExecuTorch delegate(s) "
                                    f"{', '.join(missing)} that this runtime lacks")
        pte_file.read(self.path)  # raises a clearer error for a non-.pte file
        kernels = _missing_kernels(self.path)
        if kernels:
            return UnsupportedError(f"{self.path.name} needs operator(s) {', '.join(kernels)} that "
                                    "this ExecuTorch runtime has no kernel for")
        return PocketError(f"cannot load ExecuTorch program {self.path.name}: {one_line(exc)}{log}; "
                           "the file may be corrupt or from an incompatible ExecuTorch version")

    def raw_call(self, inputs: list[np.ndarray]) -> Callable[[], Any]:
        """The bare runtime call on these inputs: no checks, no conversions (bench)."""
        args = [self._from_numpy(np.ascontiguousarray(x)) for x in inputs]
        call = self._call
        return lambda: call(args)

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return one_by_one(self.run, inputs)

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
