"""avg_pool, max_pool, l2_pool over 1-3 spatial dims (iOS15 pool.py definitions).

max_pool pads with -inf; avg_pool divides by the window's size clipped to the padded input
(exclude_padding_from_average=False, torch count_include_pad=True) or by its count of real
input elements (True). ceil_mode output sizes follow coremltools' spatial_dimensions_out_shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    check,
    get,
    require_float,
    to_bool,
    to_ints,
    to_str,
    work,
)
from runtime_py.runtimes.coreml.ops._window import out_size, resolve_pads, spatial_params, windows


def _setup(inputs: dict[str, Any]) -> tuple[np.ndarray, list[int], list[int], list, list[int]]:
    """x, kernel, strides, pads, output sizes."""
    x = array(inputs, "x")
    require_float(x)
    check(3 <= x.ndim <= 5, f"x must have rank 3..5 (N, C, *spatial), got shape {list(x.shape)}")
    nd = x.ndim - 2
    kernel_size = to_ints(get(inputs, "kernel_sizes"))
    check(len(kernel_size) == nd, f"kernel_sizes {kernel_size} needs {nd} values")
    check(all(k >= 1 for k in kernel_size), f"kernel_sizes must be >= 1, got {kernel_size}")
    strides = spatial_params(inputs, "strides", nd, 1)
    ceil_mode = to_bool(get(inputs, "ceil_mode", False))
    in_sizes = list(x.shape[2:])
    pads = resolve_pads(inputs, in_sizes, kernel_size, strides)
    if ceil_mode:
        pad_type = to_str(get(inputs, "pad_type", "valid")).lower()
        check(pad_type != "same", "ceil_mode must be False when pad_type is 'same'")
        check(all(a == b for a, b in pads), f"ceil_mode needs symmetric padding, got {pads}")
    outs = [out_size(i, p, k, s, ceil_mode)
            for i, p, k, s in zip(in_sizes, pads, kernel_size, strides)]
    return x, kernel_size, strides, pads, outs


def _reduce_windows(view: np.ndarray, nd: int, how: str) -> np.ndarray:
    axes = tuple(range(view.ndim - nd, view.ndim))
    return view.max(axis=axes) if how == "max" else view.sum(axis=axes)


@kernel("max_pool")
def max_pool(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Window maximum; padding counts as -inf."""
    x, k, s, pads, outs = _setup(inputs)
    view = windows(x, pads, k, s, [1] * len(k), outs, value=-np.inf)
    return [_reduce_windows(view, len(k), "max").astype(x.dtype, copy=False)]


def _counts(size: int, pads: tuple[int, int], k: int, s: int, out: int,
            exclude: bool) -> np.ndarray:
    """Divisor per output position along one dim."""
    start = np.arange(out) * s - pads[0]
    end = start + k
    if exclude:
        lo, hi = np.maximum(start, 0), np.minimum(end, size)
    else:
        lo, hi = np.maximum(start, -pads[0]), np.minimum(end, size + pads[1])
    return np.maximum(hi - lo, 1).astype(np.float32)


@kernel("avg_pool")
def avg_pool(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Window mean; exclude_padding_from_average (default False) picks the divisor."""
    x, k, s, pads, outs = _setup(inputs)
    exclude = to_bool(get(inputs, "exclude_padding_from_average", False))
    nd = len(k)
    total = _reduce_windows(windows(work(x), pads, k, s, [1] * nd, outs), nd, "sum")
    divisor = np.ones([1] * nd, np.float32)
    for d in range(nd):
        c = _counts(x.shape[2 + d], pads[d], k[d], s[d], outs[d], exclude)
        shape = [1] * nd
        shape[d] = -1
        divisor = divisor * c.reshape(shape)
    return [(total / divisor).astype(x.dtype, copy=False)]


@kernel("l2_pool")
def l2_pool(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """sqrt of the window's sum of squares; padding counts as 0."""
    x, k, s, pads, outs = _setup(inputs)
    xw = work(x)
    total = _reduce_windows(windows(xw * xw, pads, k, s, [1] * len(k), outs), len(k), "sum")
    return [np.sqrt(total).astype(x.dtype, copy=False)]
