"""Reading kernel inputs: required/optional values, ints, flags, axes and float work dtypes."""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

_MISSING = object()
_WORK_COPIES: dict[int, tuple[weakref.ref, np.ndarray]] = {}   # id(constant) -> (it, its fp32 copy)


def _fail(message: str) -> None:
    from runtime_py.runtimes.coreml.ops import KernelError

    raise KernelError(message)


def check(cond: bool, message: str) -> None:
    """Raise a KernelError with message unless cond holds."""
    if not cond:
        _fail(message)


def get(inputs: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    """inputs[name]; the default when absent (or None); a KernelError if required."""
    value = inputs.get(name)
    if value is None:
        if default is _MISSING:
            _fail(f"missing required input '{name}'")
        return default
    return value


def array(inputs: dict[str, Any], name: str, default: Any = _MISSING) -> np.ndarray:
    """A required (or defaulted) input as an ndarray."""
    value = get(inputs, name, default)
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def scalar(value: Any) -> Any:
    """A Python scalar from a scalar, 0-d or single-element array."""
    if isinstance(value, np.ndarray):
        check(value.size == 1, f"expected a scalar, got shape {list(value.shape)}")
        return value.reshape(-1)[0].item()
    if isinstance(value, (list, tuple)):
        check(len(value) == 1, f"expected a scalar, got {len(value)} values")
        return scalar(np.asarray(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_int(value: Any) -> int:
    """An int from a scalar-like value."""
    return int(scalar(value))


def to_float(value: Any) -> float:
    """A float from a scalar-like value."""
    return float(scalar(value))


def to_bool(value: Any) -> bool:
    """A bool from a scalar-like value."""
    return bool(scalar(value))


def to_str(value: Any) -> str:
    """A str from a str, bytes or 0-d string array."""
    value = scalar(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    check(isinstance(value, str), f"expected a string, got {type(value).__name__}")
    return value


def to_ints(value: Any) -> list[int]:
    """A list of ints from a scalar, list or array."""
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


def to_bools(value: Any) -> list[bool]:
    """A list of bools from a list or array."""
    return [bool(v) for v in np.asarray(value).reshape(-1).tolist()]


def axis_of(axis: int, rank: int) -> int:
    """A non-negative axis, checked against rank."""
    check(-rank <= axis < rank, f"axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def axes_of(axes: Any, rank: int) -> tuple[int, ...]:
    """Non-negative, unique axes, checked against rank."""
    out = tuple(axis_of(a, rank) for a in to_ints(axes))
    check(len(set(out)) == len(out), f"repeated axes {list(out)}")
    return out


def work(x: np.ndarray) -> np.ndarray:
    """x in a float dtype good for accumulation: fp16 and ints become fp32 (a constant
    registered with `freeze` is converted once, not on every run)."""
    if x.dtype == np.float32 or x.dtype == np.float64:
        return x
    copy = _WORK_COPIES.get(id(x))
    if copy is not None and copy[0]() is x:
        return copy[1]
    return x.astype(np.float32)


def freeze(value: Any) -> Any:
    """Make a program constant read-only and keep its fp32 copy for `work`."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu" and value.size > 1 \
            and value.dtype not in (np.float32, np.float64):
        value.setflags(write=False)
        key = id(value)
        converted = value.astype(np.float32)
        converted.setflags(write=False)
        _WORK_COPIES[key] = (weakref.ref(value, lambda _, k=key: _WORK_COPIES.pop(k, None)), converted)
    return value


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """The float dtype results come back in: the first float input's (fp32 if none)."""
    for a in arrays:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.dtype
    return np.dtype(np.float32)


def require_float(x: np.ndarray, name: str = "x") -> None:
    """Refuse a non-float tensor where MIL requires fp16/fp32."""
    check(x.dtype.kind == "f", f"'{name}' must be fp16/fp32, got {x.dtype}")


def rank_at_least(x: np.ndarray, rank: int, name: str = "x") -> None:
    """Refuse a tensor of rank < rank."""
    check(x.ndim >= rank, f"'{name}' must have rank >= {rank}, got shape {list(x.shape)}")


def per_channel(v: np.ndarray, rank: int, axis: int = 1) -> np.ndarray:
    """A vector reshaped to broadcast along axis of a rank-`rank` tensor."""
    shape = [1] * rank
    shape[axis] = -1
    return np.asarray(v).reshape(shape)
