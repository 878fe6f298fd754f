"""linear, matmul and einsum (iOS15 linear.py). fp16 is multiplied in fp32 and cast back."""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    check,
    float_dtype,
    get,
    to_bool,
    to_str,
    work,
)


def _rowwise_matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x @ y, a 2-D x one row at a time (a stack of [1, K] products): each row's result then
    does not depend on how many rows come with it (BLAS rounds a matrix-vector product
    differently from a matrix-matrix one), so samples run together give what one gives."""
    if x.ndim == 2 and y.ndim == 2:
        return np.matmul(x[:, None, :], y)[:, 0, :]
    return np.matmul(x, y)


def _out_dtype(*arrays: np.ndarray) -> np.dtype:
    if all(a.dtype.kind in "iu" for a in arrays):
        return np.dtype(np.int32)
    return float_dtype(*arrays)


@kernel("linear")
def linear(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x @ weight.T + bias; weight [D_out, D_in], bias [D_out] (default zeros)."""
    x, w = array(inputs, "x"), array(inputs, "weight")
    check(w.ndim == 2, f"weight must be 2-D [D_out, D_in], got shape {list(w.shape)}")
    check(x.ndim >= 1 and x.shape[-1] == w.shape[1],
          f"x's last dim {x.shape[-1] if x.ndim else None} != weight's D_in {w.shape[1]}")
    y = _rowwise_matmul(work(x), work(w).T)
    if inputs.get("bias") is not None:
        b = work(array(inputs, "bias")).reshape(-1)
        check(b.size == w.shape[0], f"bias has {b.size} values for D_out {w.shape[0]}")
        y = y + b
    return [y.astype(_out_dtype(x, w), copy=False)]


@kernel("matmul")
def matmul(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """numpy-style batched matmul; transpose_x/transpose_y swap the last two dims (rank >= 2)."""
    x, y = array(inputs, "x"), array(inputs, "y")
    check(x.ndim >= 1 and y.ndim >= 1, "matmul needs x and y of rank >= 1")
    xw, yw = work(x), work(y)
    if to_bool(get(inputs, "transpose_x", False)) and x.ndim >= 2:
        xw = np.swapaxes(xw, -1, -2)
    if to_bool(get(inputs, "transpose_y", False)) and y.ndim >= 2:
        yw = np.swapaxes(yw, -1, -2)
    k_x = xw.shape[-1]
    k_y = yw.shape[-2] if yw.ndim >= 2 else yw.shape[0]
    check(k_x == k_y, f"matmul inner dims differ: x {list(xw.shape)} vs y {list(yw.shape)}")
    return [np.asarray(_rowwise_matmul(xw, yw)).astype(_out_dtype(x, y), copy=False)]


@kernel("einsum")
def einsum(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """numpy einsum of values (a tuple of tensors) by equation (a superset of MIL's forms)."""
    values = get(inputs, "values")
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    arrays = [np.asarray(v) for v in values]
    equation = to_str(get(inputs, "equation")).replace(" ", "")
    out = np.einsum(equation, *[work(a) for a in arrays], optimize=True)
    return [np.asarray(out).astype(_out_dtype(*arrays), copy=False)]
