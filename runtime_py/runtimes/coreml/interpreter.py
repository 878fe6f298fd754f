"""Execute a Core ML ML program on any OS, op by op, with runtime_py.runtimes.coreml.ops' numpy kernels.

    program = Interpreter(Path("model.mlpackage"))
    outputs = program.run([x])            # float32 arrays in, float32 arrays out

Loading reads the package (runtime_py.runtimes.coreml.program), binds every op to its kernel once
and refuses an op outside the kernels' coverage with one line naming it. Ops whose inputs
are all constants (const, the constexpr_* decompression ops, shape arithmetic) are
evaluated at load time. After every op each output is cast to the dtype the program
declares for it, so an fp16 program computes in fp16 with a rounding after each op: a
reference semantics. A device may fuse ops or accumulate in higher precision and differ
in the last fp16 bits.

`run_samples` runs N samples of a batch-1 program. When the program's ops do not pin the
batch (most convolutional programs), chunks of samples go through each op at once, which
removes the per-op Python cost N times over; that is only used after the first chunk's
outputs are bit-identical to single runs of its samples (later chunks are padded
to the same size, so every op sees the shapes that were checked). A program that pins the
batch (a reshape to [1, ...], a slice ending at 1) fails or disagrees, and runs sample by
sample.

numpy's BLAS runs with `threads` threads (default 1) during run(): the program's matmuls
are small, and OpenBLAS's thread pool spin-waits. On a busy 2-core machine its default
(all cores) made EDANet's fp16 program 9x slower (363 vs 41 ms per image).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.program import Op, Program, Var, read_package
from runtime_py.errors import PocketError, UnsupportedError, one_line

CHUNK_ELEMENTS = 1 << 19      # input elements per chunk of samples run together
MAX_CHUNK = 64
VARIADIC = {"values"}          # parameters bound to a tuple of values (concat, stack, einsum)
NUMPY_DTYPES = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
                "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
                "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "bool": np.bool_}


@dataclass
class Step:
    """One bound op: its kernel and, per parameter, variable names or constant values."""

    op: Op
    kernel: Any
    params: dict[str, list[Any]]          # Var or constant, as bound in the program

    def gather(self, env: dict[str, Any]) -> dict[str, Any]:
        resolved = {}
        for param, args in self.params.items():
            values = [env[a.name] if isinstance(a, Var) else a for a in args]
            resolved[param] = values if param in VARIADIC or len(values) != 1 else values[0]
        return resolved


def _cast(value: Any, dtype: str) -> Any:
    """`value` as the program declares it: fp16 outputs are rounded to fp16 here."""
    target = NUMPY_DTYPES.get(dtype)
    if target is None or not isinstance(value, (np.ndarray, np.generic, float, int, bool)):
        return value
    return np.asarray(value).astype(target, copy=False)


def _is_constant(op: Op) -> bool:
    return not any(isinstance(a, Var) for args in op.inputs.values() for a in args)


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController()
    except Exception:  # noqa: BLE001 - without it the interpreter is slower, not wrong
        return None


def _blas_threads(threads: int) -> Any:
    """A context limiting numpy's BLAS to `threads` threads (threadpoolctl), or a no-op."""
    controller = _blas_controller()
    return controller.limit(limits=threads, user_api="blas") if controller else contextlib.nullcontext()


def _for_samples(op_type: str, args: dict[str, Any], samples: int) -> dict[str, Any]:
    """An op's arguments when `samples` samples run together: a reshape to [1, ...] of a
    tensor that carries them keeps them on its first axis."""
    if op_type == "reshape":
        shape = np.asarray(args.get("shape")).reshape(-1)
        x = args.get("x")
        if shape.size and shape[0] == 1 and isinstance(x, np.ndarray) and x.ndim and x.shape[0] == samples:
            return {**args, "shape": np.concatenate([[samples], shape[1:]]).astype(shape.dtype)}
    return args


class Interpreter:
    """A loaded ML program, ready to run."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from runtime_py.runtimes.coreml.ops import KERNELS, coverage
        from runtime_py.runtimes.coreml.ops._args import freeze

        self.path = Path(path)
        self.threads = int(threads or 1)
        self.program: Program = read_package(self.path)
        unknown = sorted({op.type for op in self.program.ops if op.type != "const" and op.type not in KERNELS})
        if unknown:
            raise UnsupportedError(
                f"{self.path.name}: Core ML op(s) {', '.join(unknown)} are outside the interpreter's "
                f"coverage ({', '.join(coverage())}); run it on macOS/iOS or export with other ops")
        self.constants: dict[str, Any] = {}
        self.steps: list[Step] = []
        for op in self.program.ops:
            self._bind(op, KERNELS)
        for value in self.constants.values():
            freeze(value)
        self._together: dict[int, bool] = {}    # chunk size -> its samples may run together
        self.input_specs = self.program.function_inputs
        self.input_shapes = [tuple(s.shape) for s in self.program.inputs]
        self.output_shapes = [tuple(s.shape) for s in self.program.outputs]

    def _bind(self, op: Op, kernels: dict) -> None:
        if op.type == "const":
            value = op.attributes.get("val")
            self.constants[op.outputs[0].name] = _cast(value, op.outputs[0].dtype)
            return
        step = Step(op, kernels[op.type], dict(op.inputs))
        if _is_constant(op):
            self._store(step, self._execute(step, self.constants), self.constants)
        else:
            self.steps.append(step)

    def _execute(self, step: Step, env: dict[str, Any], samples: int = 1) -> list[Any]:
        try:
            args = step.gather(env)
            if samples > 1:
                args = _for_samples(step.op.type, args, samples)
            return step.kernel(args, dict(step.op.attributes))
        except PocketError as exc:
            raise PocketError(f"{self.path.name}: op {step.op.name} ({step.op.type}): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a kernel's numpy error, worded once here
            raise PocketError(f"{self.path.name}: op {step.op.name} ({step.op.type}) failed: "
                              f"{type(exc).__name__}: {one_line(exc)}") from None

    @staticmethod
    def _store(step: Step, results: list[Any], env: dict[str, Any]) -> None:
        for spec, value in zip(step.op.outputs, results):
            env[spec.name] = _cast(value, spec.dtype)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """The program's outputs (float32) for its inputs, in the model description's order."""
        if len(inputs) != len(self.input_specs):
            raise PocketError(f"{self.path.name} takes {len(self.input_specs)} input(s), got {len(inputs)}")
        return self._run(inputs)

    def run_samples(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs for N samples ([N, ...] per input, N along the batch-1 axis), stacked:
        what N runs give."""
        n = int(inputs[0].shape[0])
        batch_one = all(s.shape and s.shape[0] == 1 for s in self.program.inputs)
        per_sample = max(1, sum(int(np.prod(x.shape[1:])) for x in inputs))
        chunk = min(MAX_CHUNK, max(1, CHUNK_ELEMENTS // per_sample), n)
        if n == 1 or chunk == 1 or not batch_one or self._together.get(chunk) is False:
            return self._one_by_one(inputs)
        parts = [self._chunk([x[start:start + chunk] for x in inputs], chunk)
                 for start in range(0, n, chunk)]
        return [np.concatenate(outs) for outs in zip(*parts)]

    def _one_by_one(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        results = [self._run([x[i:i + 1] for x in inputs]) for i in range(int(inputs[0].shape[0]))]
        return [np.concatenate(outs) for outs in zip(*results)]

    def _chunk(self, inputs: list[np.ndarray], size: int) -> list[np.ndarray]:
        """One chunk run together (padded to `size` samples), or one by one if the program
        turned out to pin the batch."""
        m = int(inputs[0].shape[0])
        if self._together.get(size) is not False:
            padded = [np.concatenate([x, np.repeat(x[-1:], size - m, axis=0)]) if m < size else x
                      for x in inputs]
            try:
                outs = self._run(padded, samples=size)
            except PocketError:
                outs = None
            if outs is not None and all(o.ndim and o.shape[0] == size for o in outs):
                if size not in self._together:
                    self._together[size] = self._agrees(padded, outs)
                if self._together[size]:
                    return [o[:m] for o in outs]
            self._together[size] = False
        return self._one_by_one(inputs)

    def _agrees(self, inputs: list[np.ndarray], outs: list[np.ndarray]) -> bool:
        """Whether single runs of the chunk's samples give exactly its outputs for them."""
        for i in range(int(inputs[0].shape[0])):
            single = self._run([x[i:i + 1] for x in inputs])
            if not all(np.array_equal(s[0], o[i]) for s, o in zip(single, outs)):
                return False
        return True

    def _run(self, inputs: list[np.ndarray], samples: int = 1) -> list[np.ndarray]:
        env = dict(self.constants)
        for spec, x in zip(self.input_specs, inputs):
            env[spec.name] = _cast(np.asarray(x), spec.dtype)
        with _blas_threads(self.threads):
            for step in self.steps:
                self._store(step, self._execute(step, env, samples), env)
        return [np.asarray(env[name], dtype=np.float32) for name in self.program.block_outputs]
