"""Reductions (iOS15 reduction.py; iOS17 adds reduce_arg output_dtype).

axes absent = all axes; keep_dims default False; results come back in x's dtype (as the
definitions' value_inference casts them); floats accumulate in fp32.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    axes_of,
    axis_of,
    check,
    get,
    to_bool,
    to_int,
    to_str,
    work,
)


def _log_sum_exp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    total = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return total if keepdims else np.squeeze(total, axis=axis)


_REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "reduce_sum": np.sum,
    "reduce_mean": np.mean,
    "reduce_max": np.max,
    "reduce_min": np.min,
    "reduce_prod": np.prod,
    "reduce_l1_norm": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "reduce_l2_norm": lambda x, axis, keepdims: np.sqrt(
        np.sum(np.square(x), axis=axis, keepdims=keepdims)),
    "reduce_sum_square": lambda x, axis, keepdims: np.sum(
        np.square(x), axis=axis, keepdims=keepdims),
    "reduce_log_sum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "reduce_log_sum_exp": _log_sum_exp,
}


def _reduction(fn: Callable[..., np.ndarray], name: str):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = array(inputs, "x")
        check(x.dtype.kind in "biuf", f"x must be numeric, got {x.dtype}")
        axes = None if inputs.get("axes") is None else axes_of(inputs["axes"], max(x.ndim, 1))
        keep = to_bool(get(inputs, "keep_dims", False))
        check(x.size > 0 or name not in ("reduce_max", "reduce_min"), "empty tensor")
        xin = work(x) if x.dtype.kind == "f" else x
        with np.errstate(all="ignore"):
            out = fn(xin, axis=axes, keepdims=keep)
        return [np.asarray(out).astype(x.dtype)]

    run.__doc__ = f"{name} over axes (None = all), keep_dims default False."
    return run


for _name, _fn in _REDUCTIONS.items():
    kernel(_name)(_reduction(_fn, _name))


def _arg_reduction(fn: Callable[..., np.ndarray]):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = array(inputs, "x")
        check(x.ndim >= 1 and x.size > 0, f"x must be a non-empty tensor, got {list(x.shape)}")
        axis = axis_of(to_int(get(inputs, "axis", -1)), x.ndim)
        keep = to_bool(get(inputs, "keep_dims", False))
        dtype = to_str(get(inputs, "output_dtype", "int32")).lower()
        check(dtype in ("int32", "uint16"), f"output_dtype must be int32 or uint16, got {dtype}")
        out = fn(x, axis=axis)
        if keep:
            out = np.expand_dims(out, axis)
        return [np.asarray(out).astype(dtype)]

    run.__doc__ = f"Index of the {fn.__name__[3:]} along axis (default -1)."
    return run


kernel("reduce_argmax")(_arg_reduction(np.argmax))
kernel("reduce_argmin")(_arg_reduction(np.argmin))
