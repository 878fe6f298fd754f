"""Padding and sliding windows shared by conv and pooling (coremltools' _utils.py rules)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime_py.runtimes.coreml.ops._args import check, get, to_ints, to_str

PAD_TYPES = ("valid", "same", "same_lower", "custom")


def spatial_params(inputs: dict[str, Any], name: str, nd: int, default: int) -> list[int]:
    """A per-spatial-dim int list input (strides, dilations), defaulted and length-checked."""
    values = to_ints(get(inputs, name, [default] * nd))
    if len(values) == 1 and nd > 1:
        values = values * nd
    check(len(values) == nd, f"'{name}' needs {nd} values, got {values}")
    check(all(v >= 1 for v in values), f"'{name}' must be >= 1, got {values}")
    return values


def resolve_pads(inputs: dict[str, Any], in_sizes: list[int], eff_kernel: list[int],
                 strides: list[int], default_type: str = "valid") -> list[tuple[int, int]]:
    """(before, after) per spatial dim from pad_type and pad.

    same: total = max(0, (ceil(i/s)-1)*s + k - i), the extra row/col after (TF / torch
    padding='same'); same_lower puts it before (the coremltools conv tests rotate torch's
    'same' to get same_lower). pad is [d0_begin, d0_end, d1_begin, d1_end, ...], used only
    for custom (iOS15 conv/pool definitions)."""
    nd = len(in_sizes)
    pad_type = to_str(get(inputs, "pad_type", default_type)).lower()
    check(pad_type in PAD_TYPES, f"unknown pad_type '{pad_type}' (expected one of {PAD_TYPES})")
    if pad_type == "valid":
        return [(0, 0)] * nd
    if pad_type == "custom":
        pad = to_ints(get(inputs, "pad", [0] * 2 * nd))
        check(len(pad) == 2 * nd, f"'pad' needs {2 * nd} values, got {pad}")
        check(all(p >= 0 for p in pad), f"'pad' must be >= 0, got {pad}")
        return [(pad[2 * d], pad[2 * d + 1]) for d in range(nd)]
    pads = []
    for i, k, s in zip(in_sizes, eff_kernel, strides):
        total = max(0, s * math.ceil(i / s) - i + k - s)
        small = total // 2
        pads.append((total - small, small) if pad_type == "same_lower" else (small, total - small))
    return pads


def out_size(size: int, pads: tuple[int, int], k: int, s: int, ceil_mode: bool = False) -> int:
    """Output length of a window op (coremltools spatial_dimensions_out_shape, ceil rule
    included: a last window starting at or past input + pad_begin is dropped when padded)."""
    total = pads[0] + pads[1]
    if not ceil_mode:
        out = (size + total - k) // s + 1
    else:
        out = (size + total - k + s - 1) // s + 1
        if (out - 1) * s >= size + total / 2 and total > 0:
            out -= 1
    check(out > 0, f"window {k} (stride {s}) does not fit input size {size} with pads {pads}")
    return out


def windows(x: np.ndarray, pads: list[tuple[int, int]], kernel: list[int], strides: list[int],
            dilations: list[int], outs: list[int], value: float = 0.0) -> np.ndarray:
    """A strided view (N, C, *out, *kernel) of x padded with value; extra trailing padding
    is added when ceil_mode windows run past the padded input."""
    nd = len(kernel)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    widths = [(0, 0)] * (x.ndim - nd)
    for i in range(nd):
        size = x.shape[x.ndim - nd + i]
        need = (outs[i] - 1) * strides[i] + eff[i]
        extra = max(0, need - (size + pads[i][0] + pads[i][1]))
        widths.append((pads[i][0], pads[i][1] + extra))
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, mode="constant", constant_values=value)
    axes = tuple(range(x.ndim - nd, x.ndim))
    view = sliding_window_view(x, eff, axis=axes)
    index = [slice(None)] * (x.ndim - nd)
    index += [slice(0, (o - 1) * s + 1, s) for o, s in zip(outs, strides)]
    index += [slice(None, None, d) for d in dilations]
    return view[tuple(index)]
