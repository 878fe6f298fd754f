"""numpy kernels for Core ML ML-program (MIL) ops, one small function per op type.

    from runtime_py.runtimes.coreml.ops import KERNELS
    outs = KERNELS["conv"]({"x": x, "weight": w, "pad_type": "same"}, {})   # -> [y]

A kernel is ``fn(inputs, attrs) -> list[np.ndarray]`` (one array per op output). ``inputs``
maps MIL input names (as in coremltools' op definitions) to resolved values; an omitted
optional input is absent and the MIL default applies. ``attrs`` holds attribute-bound values
(iOS16 constexpr ops keep their parameters there). Any failure inside a kernel surfaces as
one-line ``KernelError`` naming the op. numpy only: never imports coremltools or torch.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from runtime_py.errors import PocketError, one_line

Kernel = Callable[[dict[str, Any], dict[str, Any]], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {}


class KernelError(PocketError):
    """An op kernel refused its inputs (wrong shape, dtype or parameter); names the op."""

    def __init__(self, message: str, op: str | None = None):
        super().__init__(" ".join(str(message).split()))
        self.op = op


def _wrap(name: str, fn: Kernel) -> Kernel:
    @functools.wraps(fn)
    def run(inputs: dict[str, Any], attrs: dict[str, Any] | None = None) -> list[np.ndarray]:
        try:
            return fn(inputs, attrs or {})
        except KernelError as exc:
            if exc.op is not None:
                raise
            raise KernelError(f"MIL op '{name}': {exc}", op=name) from None
        except Exception as exc:  # noqa: BLE001 -- any numpy/Python error becomes one line
            raise KernelError(f"MIL op '{name}': {type(exc).__name__}: {one_line(exc)}",
                              op=name) from None

    run.op_type = name  # type: ignore[attr-defined]
    return run


def kernel(*names: str) -> Callable[[Kernel], Kernel]:
    """Register a function as the kernel of one or more MIL op types."""
    if not names:
        raise ValueError("kernel() needs at least one op type name")

    def register(fn: Kernel) -> Kernel:
        for name in names:
            if name in KERNELS:
                raise ValueError(f"MIL op '{name}' registered twice")
            KERNELS[name] = _wrap(name, fn)
        return fn

    return register


def coverage() -> list[str]:
    """Sorted MIL op types that have a kernel."""
    return sorted(KERNELS)


# Importing the families fills KERNELS.
from runtime_py.runtimes.coreml.ops import (  # noqa: F401
    activation,
    compression,
    conv,
    elementwise,
    layout,
    linear,
    normalization,
    pool,
    reduce,
    resize,
    selection,
    tensor,
)

__all__ = ["KERNELS", "Kernel", "KernelError", "coverage", "kernel"]
