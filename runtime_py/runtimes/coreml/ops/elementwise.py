"""Elementwise binary (numpy broadcasting), unary, clip, threshold and cast ops.

Definitions followed: iOS15 elementwise_binary.py / elementwise_unary.py and iOS17
elementwise_unary.py (cast to int8/uint8/int16/uint16; epsilon dtypes). Semantics follow the
ops' value_inference: floor_div floors, mod takes the divisor's sign (np.mod), round is
np.round (half to even).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import check, get, to_float, to_str, work
from runtime_py.runtimes.coreml.ops._special import erf

_DTYPES = {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "int8": np.int8,
           "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
           "uint32": np.uint32, "int64": np.int64, "bool": np.bool_}


def operand(value: Any) -> Any:
    """A numpy array, or a Python number left weak so it takes the tensor's dtype."""
    if isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        return value
    arr = np.asarray(value)
    check(arr.dtype.kind in "biuf", f"expected a numeric tensor, got {type(value).__name__}")
    return arr


def settle(result: Any, *args: Any) -> np.ndarray:
    """result as an ndarray, with float64/int64 from Python scalars narrowed to fp32/int32."""
    result = np.asarray(result)
    typed = [a.dtype for a in args if isinstance(a, (np.ndarray, np.generic))]
    if result.dtype == np.float64 and np.dtype(np.float64) not in typed:
        return result.astype(np.float32)
    if result.dtype == np.int64 and np.dtype(np.int64) not in typed:
        return result.astype(np.int32)
    return result


def _real_div(x: Any, y: Any) -> np.ndarray:
    out = np.true_divide(x, y)
    both_int = all(np.asarray(v).dtype.kind in "iub" for v in (x, y))
    return np.trunc(out).astype(np.int32) if both_int else out  # MIL: int32 / int32 -> int32


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": _real_div,
    "floor_div": np.floor_divide, "mod": np.mod, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
}
_LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or,
            "logical_xor": np.logical_xor}


def _binary(fn: Callable[[Any, Any], Any], logical: bool = False):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x, y = operand(get(inputs, "x")), operand(get(inputs, "y"))
        if logical:
            x, y = np.asarray(x, dtype=bool), np.asarray(y, dtype=bool)
        with np.errstate(all="ignore"):
            return [settle(fn(x, y), x, y)]

    run.__doc__ = f"Elementwise {fn.__name__} of x and y with numpy broadcasting."
    return run


for _name, _fn in _BINARY.items():
    kernel(_name)(_binary(_fn))
for _name, _fn in _LOGICAL.items():
    kernel(_name)(_binary(_fn, logical=True))


def _float_unary(fn: Callable[[np.ndarray], np.ndarray]):
    """A float op computed in fp32 (fp64 kept) and returned in x's float dtype."""
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = np.asarray(operand(get(inputs, "x")))
        out_dtype = x.dtype if x.dtype.kind == "f" else np.float32
        with np.errstate(all="ignore"):
            return [np.asarray(fn(work(x))).astype(out_dtype, copy=False)]

    return run


def _int_unary(fn: Callable[[np.ndarray], np.ndarray]):
    """An op defined for ints too (abs, sign, square, exp2): the dtype is kept."""
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = np.asarray(operand(get(inputs, "x")))
        with np.errstate(all="ignore"):
            if x.dtype.kind == "f":
                return [np.asarray(fn(work(x))).astype(x.dtype, copy=False)]
            return [np.asarray(fn(x)).astype(x.dtype, copy=False)]

    return run


_FLOAT_UNARY = {
    "acos": np.arccos, "asin": np.arcsin, "atan": np.arctan, "atanh": np.arctanh,
    "ceil": np.ceil, "cos": np.cos, "cosh": np.cosh, "exp": np.exp, "floor": np.floor,
    "round": np.round, "sin": np.sin, "sinh": np.sinh, "sqrt": np.sqrt, "tan": np.tan,
    "tanh": np.tanh, "erf": lambda v: erf(v),
}
_INT_UNARY = {"abs": np.abs, "sign": np.sign, "square": np.square,
              "exp2": lambda v: np.exp2(v.astype(np.float64) if v.dtype.kind != "f" else v)}

for _name, _fn in _FLOAT_UNARY.items():
    kernel(_name)(_float_unary(_fn))
for _name, _fn in _INT_UNARY.items():
    kernel(_name)(_int_unary(_fn))


def _with_epsilon(fn: Callable[[np.ndarray, float], np.ndarray], default: float):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = np.asarray(operand(get(inputs, "x")))
        eps = to_float(get(inputs, "epsilon", default))
        out_dtype = x.dtype if x.dtype.kind == "f" else np.float32
        with np.errstate(all="ignore"):
            return [np.asarray(fn(work(x), eps)).astype(out_dtype, copy=False)]

    return run


# Defaults from iOS15 elementwise_unary.py: inverse 1e-4, log 1e-45, rsqrt 1e-12.
kernel("inverse")(_with_epsilon(lambda x, e: 1.0 / (x + np.asarray(e, x.dtype)), 1e-4))
kernel("log")(_with_epsilon(lambda x, e: np.log(x + np.asarray(e, x.dtype)), 1e-45))
kernel("rsqrt")(_with_epsilon(lambda x, e: 1.0 / np.sqrt(x + np.asarray(e, x.dtype)), 1e-12))


@kernel("logical_not")
def logical_not(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """NOT x (numbers are true when non-zero)."""
    return [np.logical_not(np.asarray(operand(get(inputs, "x"))))]


@kernel("clip")
def clip(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """min(max(x, alpha), beta)."""
    x = np.asarray(operand(get(inputs, "x")))
    alpha, beta = to_float(get(inputs, "alpha")), to_float(get(inputs, "beta"))
    check(alpha <= beta, f"clip needs alpha <= beta, got {alpha} > {beta}")
    return [np.minimum(np.maximum(x, alpha), beta).astype(x.dtype, copy=False)]


@kernel("threshold")
def threshold(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """max(x, alpha)."""
    x = np.asarray(operand(get(inputs, "x")))
    return [np.maximum(x, to_float(get(inputs, "alpha"))).astype(x.dtype, copy=False)]


def dtype_named(name: str) -> np.dtype:
    """numpy dtype of a MIL dtype string ('fp16', 'int32', 'bool', ...)."""
    check(name in _DTYPES, f"unknown dtype '{name}' (expected one of {sorted(_DTYPES)})")
    return np.dtype(_DTYPES[name])


@kernel("cast")
def cast(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x converted to dtype (float -> int truncates toward zero, as numpy astype)."""
    x = np.asarray(operand(get(inputs, "x")))
    target = dtype_named(to_str(get(inputs, "dtype")))
    with np.errstate(all="ignore"):
        return [x.astype(target)]
