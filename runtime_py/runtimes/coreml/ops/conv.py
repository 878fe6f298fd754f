"""conv and conv_transpose (1-3 spatial dims), im2col + batched matmul per group.

Definitions followed: iOS15 conv.py (iOS17 only widens dtypes). Computed in fp32 for fp16
inputs, returned in the input dtype.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    check,
    get,
    require_float,
    to_int,
    to_ints,
    to_str,
    work,
)
from runtime_py.runtimes.coreml.ops._window import out_size, resolve_pads, spatial_params, windows


def _common(inputs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int, int]:
    x, w = array(inputs, "x"), array(inputs, "weight")
    require_float(x)
    check(3 <= x.ndim <= 5, f"x must have rank 3..5 (N, C, *spatial), got shape {list(x.shape)}")
    check(w.ndim == x.ndim, f"weight rank {w.ndim} != x rank {x.ndim}")
    groups = to_int(get(inputs, "groups", 1))
    check(groups >= 1, f"groups must be >= 1, got {groups}")
    return x, w, groups, x.ndim - 2


def _bias(inputs: dict[str, Any], c_out: int) -> np.ndarray | None:
    if inputs.get("bias") is None:
        return None
    b = work(array(inputs, "bias")).reshape(-1)
    check(b.size == c_out, f"bias has {b.size} values for {c_out} output channels")
    return b


@kernel("conv")
def conv(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """y = conv(x, weight) + bias; weight [C_out, C_in/groups, *K]; pad_type default valid."""
    x, w, groups, nd = _common(inputs)
    n, c_in = x.shape[:2]
    c_out, cg = w.shape[:2]
    kernel_size = list(w.shape[2:])
    check(c_in % groups == 0 and c_out % groups == 0,
          f"channels in {c_in} / out {c_out} not divisible by groups {groups}")
    check(c_in // groups == cg,
          f"x has {c_in} channels but weight expects {cg * groups} ({cg} per group x {groups})")
    strides = spatial_params(inputs, "strides", nd, 1)
    dilations = spatial_params(inputs, "dilations", nd, 1)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilations)]
    in_sizes = list(x.shape[2:])
    pads = resolve_pads(inputs, in_sizes, eff, strides)
    outs = [out_size(i, p, k, s) for i, p, k, s in zip(in_sizes, pads, eff, strides)]
    bias = _bias(inputs, c_out)

    og = c_out // groups
    if math.prod(kernel_size) == 1 and not any(a or b for a, b in pads) and strides == [1] * nd:
        y = _pointwise(work(x), work(w), groups)
    elif cg == 1 and og == 1:
        y = _depthwise(work(x), work(w), pads, kernel_size, strides, dilations, outs)
    else:
        y = _im2col(work(x), work(w), groups, pads, kernel_size, strides, dilations, outs)
    if bias is not None:
        y = y + bias.reshape([1, -1] + [1] * nd)
    return [y.astype(x.dtype, copy=False)]


def _pointwise(x: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """A 1x1, stride-1, unpadded conv: one matmul per group on (C, pixels)."""
    n, c_in, *spatial = x.shape
    c_out = w.shape[0]
    xs = x.reshape(n, groups, c_in // groups, -1)
    ws = w.reshape(groups, c_out // groups, c_in // groups)
    return np.matmul(ws, xs).reshape(n, c_out, *spatial)


def _depthwise(x: np.ndarray, w: np.ndarray, pads, kernel_size, strides, dilations,
               outs) -> np.ndarray:
    """One filter per channel: a weighted sum of the kernel's shifted, strided views."""
    view = windows(x, pads, kernel_size, strides, dilations, outs)  # N,C,*out,*K
    nd = len(kernel_size)
    taps = w.reshape(w.shape[0], -1)
    y = np.zeros(view.shape[:2 + nd], np.float32 if x.dtype != np.float64 else np.float64)
    for k, tap in enumerate(itertools.product(*(range(size) for size in kernel_size))):
        y += view[(Ellipsis, *tap)] * taps[:, k].reshape([1, -1] + [1] * nd)
    return y


def _im2col(x: np.ndarray, w: np.ndarray, groups: int, pads, kernel_size, strides,
            dilations, outs) -> np.ndarray:
    """Any conv: the windows as columns, one batched matmul per group."""
    n, c_out, cg, nd = x.shape[0], w.shape[0], w.shape[1], len(kernel_size)
    view = windows(x, pads, kernel_size, strides, dilations, outs)  # N,C,*out,*K
    og, kk, m = c_out // groups, math.prod(kernel_size), math.prod(outs)
    view = view.reshape(n, groups, cg, *outs, *kernel_size)
    order = [1, 0, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd)]
    cols = view.transpose(order).reshape(groups, n * m, cg * kk)
    wk = w.reshape(groups, og, cg * kk).transpose(0, 2, 1)
    y = np.matmul(cols, wk)  # G, N*M, Og
    y = y.reshape(groups, n, *outs, og)
    return y.transpose([1, 0, nd + 2, *range(2, nd + 2)]).reshape(n, c_out, *outs)


def _transpose_contributions(x: np.ndarray, w: np.ndarray, groups: int) -> np.ndarray:
    """(N, C_out, *S, *K): every input pixel times every kernel tap."""
    n, c_in = x.shape[:2]
    spatial, kernel_size = list(x.shape[2:]), list(w.shape[2:])
    nd, og = len(spatial), w.shape[1]
    cg, kk, m = c_in // groups, math.prod(kernel_size), math.prod(spatial)
    xs = x.reshape(n, groups, cg, m).transpose(1, 0, 3, 2).reshape(groups, n * m, cg)
    ws = w.reshape(groups, cg, og * kk)
    y = np.matmul(xs, ws).reshape(groups, n, *spatial, og, *kernel_size)
    order = [1, 0, nd + 2, *range(2, nd + 2), *range(nd + 3, 2 * nd + 3)]
    return y.transpose(order).reshape(n, groups * og, *spatial, *kernel_size)


def _crop(full: np.ndarray, begins: list[int], outs: list[int]) -> np.ndarray:
    """full[..., b:b+o] per spatial dim, zero-extended past the end."""
    need = [max(0, b + o - full.shape[2 + i]) for i, (b, o) in enumerate(zip(begins, outs))]
    if any(need):
        full = np.pad(full, [(0, 0), (0, 0)] + [(0, e) for e in need])
    index = (slice(None), slice(None)) + tuple(slice(b, b + o) for b, o in zip(begins, outs))
    return full[index]


def _transpose_geometry(inputs: dict[str, Any], full: list[int], spatial: list[int],
                        strides: list[int], nd: int) -> tuple[list[int], list[int]]:
    """(begins, outs) cropping the full transposed output (iOS15 conv_transpose rules)."""
    pad_type = to_str(get(inputs, "pad_type", "valid")).lower()
    check(pad_type in ("valid", "same", "custom"), f"unknown pad_type '{pad_type}'")
    pad = to_ints(get(inputs, "pad", [0] * 2 * nd))
    check(len(pad) == 2 * nd, f"'pad' needs {2 * nd} values, got {pad}")
    if inputs.get("output_shape") is not None:
        shape = to_ints(inputs["output_shape"])
        check(len(shape) in (nd, nd + 2), f"output_shape {shape} does not match rank")
        outs = shape[-nd:]
    elif pad_type == "same":
        outs = [i * s for i, s in zip(spatial, strides)]
    elif pad_type == "custom":
        outs = [f - pad[2 * d] - pad[2 * d + 1] for d, f in enumerate(full)]
    else:
        outs = list(full)
    if pad_type == "custom":
        begins = [pad[2 * d] for d in range(nd)]
    elif pad_type == "same":
        begins = [max(0, f - o) // 2 for f, o in zip(full, outs)]
    else:
        begins = [0] * nd
    check(all(o > 0 for o in outs), f"conv_transpose output size {outs} is not positive")
    return begins, outs


@kernel("conv_transpose")
def conv_transpose(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Transposed conv; weight [C_in, C_out/groups, *K]; output_shape optional."""
    x, w, groups, nd = _common(inputs)
    c_in = x.shape[1]
    check(w.shape[0] == c_in, f"x has {c_in} channels but weight has {w.shape[0]} (dim 0)")
    check(c_in % groups == 0, f"input channels {c_in} not divisible by groups {groups}")
    strides = spatial_params(inputs, "strides", nd, 1)
    dilations = spatial_params(inputs, "dilations", nd, 1)
    spatial, kernel_size = list(x.shape[2:]), list(w.shape[2:])
    full = [(i - 1) * s + (k - 1) * d + 1
            for i, s, k, d in zip(spatial, strides, kernel_size, dilations)]
    begins, outs = _transpose_geometry(inputs, full, spatial, strides, nd)
    c_out = w.shape[1] * groups
    bias = _bias(inputs, c_out)

    contrib = _transpose_contributions(work(x), work(w), groups)
    y = np.zeros((x.shape[0], c_out, *full), dtype=contrib.dtype)
    for taps in itertools.product(*(range(k) for k in kernel_size)):
        index = (slice(None), slice(None)) + tuple(
            slice(t * d, t * d + (i - 1) * s + 1, s)
            for t, d, i, s in zip(taps, dilations, spatial, strides))
        y[index] += contrib[(Ellipsis, *taps)]
    y = _crop(y, begins, outs)
    if bias is not None:
        y = y + bias.reshape([1, -1] + [1] * nd)
    return [np.ascontiguousarray(y).astype(x.dtype, copy=False)]
