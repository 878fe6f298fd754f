"""Image resizing on the last two dims: upsample_bilinear / upsample_nearest_neighbor (scale
factors), resize_bilinear / resize_nearest_neighbor (target sizes) and iOS17 resize.

Definitions followed: iOS15 image_resizing.py for grids and sampling modes, iOS16
upsample_bilinear for half_pixel_centers (default: not align_corners). upsample_* output
size is floor(scale * size) and the grid is recomputed from the sizes (the definition:
"corresponds to recompute_scale_factor=True"), so a scale of 1.5000125 behaves as out/in.
Interpolation runs separably in fp32 (fp16 cast back).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    check,
    get,
    rank_at_least,
    require_float,
    scalar,
    to_bool,
    to_int,
    to_ints,
    to_str,
    work,
)

SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS",
                  "UNALIGN_CORNERS")


def grid(size: int, out: int, mode: str) -> np.ndarray:
    """Source coordinates of each output position (iOS15 resize_bilinear notes), clamped
    to [0, size - 1]."""
    i = np.arange(out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if out == 1:
            g = np.full(1, (size - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            g = i * ((size - 1) / (out - 1))
    elif mode == "DEFAULT":
        g = i * (size / out)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, size - 1) / out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        g = (i + 0.5) * (size / out) - 0.5
    else:
        check(False, f"unknown sampling_mode '{mode}' (expected one of {SAMPLING_MODES})")
    return np.clip(g, 0, size - 1)


def linear_axis(x: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    """Linear interpolation of x along axis at fractional coords."""
    size = x.shape[axis]
    lo = np.clip(np.floor(coords).astype(np.int64), 0, size - 1)
    hi = np.minimum(lo + 1, size - 1)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = (coords - lo).astype(x.dtype).reshape(shape)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    return a + (b - a) * frac


def nearest_index(size: int, out: int, half_pixel: bool) -> np.ndarray:
    """floor(i * size/out), or floor((i + 0.5) * size/out), in exact integer arithmetic."""
    i = np.arange(out, dtype=np.int64)
    idx = ((2 * i + 1) * size) // (2 * out) if half_pixel else (i * size) // out
    return np.minimum(idx, size - 1)


def _image(inputs: dict[str, Any]) -> np.ndarray:
    x = array(inputs, "x")
    require_float(x)
    rank_at_least(x, 3)
    return x


def _scaled(size: int, scale: Any) -> int:
    """floor(scale * size) in the scale's own dtype (fp32 scales multiply in fp32, as
    coremltools' type inference does)."""
    s = np.asarray(scale).reshape(-1)
    check(s.size == 1, f"scale factor must be a scalar, got {s.size} values")
    out = int(np.floor(s[0] * size))
    check(out > 0, f"scale factor {scalar(scale)} gives an empty output from size {size}")
    return out


def _bilinear(x: np.ndarray, outs: tuple[int, int], mode: str) -> np.ndarray:
    y = work(x)
    for axis, out in zip((-2, -1), outs):
        y = linear_axis(y, y.ndim + axis, grid(x.shape[axis], out, mode))
    return y.astype(x.dtype, copy=False)


def _nearest(x: np.ndarray, outs: tuple[int, int], half_pixel: bool) -> np.ndarray:
    y = x
    for axis, out in zip((-2, -1), outs):
        y = np.take(y, nearest_index(x.shape[axis], out, half_pixel), axis=y.ndim + axis)
    return y


@kernel("upsample_bilinear")
def upsample_bilinear(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Bilinear upsample by scale factors (default 1); align_corners default True."""
    x = _image(inputs)
    outs = (_scaled(x.shape[-2], get(inputs, "scale_factor_height", 1)),
            _scaled(x.shape[-1], get(inputs, "scale_factor_width", 1)))
    align = to_bool(get(inputs, "align_corners", True))
    half = to_bool(get(inputs, "half_pixel_centers", not align))
    check(not (align and half), "align_corners and half_pixel_centers cannot both be True")
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    return [_bilinear(x, outs, mode)]


@kernel("resize_bilinear")
def resize_bilinear(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Bilinear resize to target_size_height/width (default 1) with a sampling_mode."""
    x = _image(inputs)
    outs = (to_int(get(inputs, "target_size_height", 1)),
            to_int(get(inputs, "target_size_width", 1)))
    check(min(outs) > 0, f"target sizes must be positive, got {list(outs)}")
    return [_bilinear(x, outs, to_str(get(inputs, "sampling_mode", "DEFAULT")).upper())]


@kernel("upsample_nearest_neighbor")
def upsample_nearest_neighbor(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Nearest upsample by scale factors: source floor(i * in/out) (torch 'nearest')."""
    x = _image(inputs)
    outs = (_scaled(x.shape[-2], get(inputs, "scale_factor_height", 1)),
            _scaled(x.shape[-1], get(inputs, "scale_factor_width", 1)))
    return [_nearest(x, outs, half_pixel=False)]


@kernel("resize_nearest_neighbor")
def resize_nearest_neighbor(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Nearest resize to target sizes: source floor((i + 0.5) * in/out), the TF
    half_pixel_centers rule the TF converter maps onto this op."""
    x = _image(inputs)
    outs = (to_int(get(inputs, "target_size_height")), to_int(get(inputs, "target_size_width")))
    check(min(outs) > 0, f"target sizes must be positive, got {list(outs)}")
    return [_nearest(x, outs, half_pixel=True)]


def _resize_shape(x: np.ndarray, shape: list[int], dims: int) -> list[int]:
    check(0 < dims <= len(shape) <= x.ndim,
          f"resize needs 0 < resized_dims ({dims}) <= len(shape) ({len(shape)}) <= rank")
    out = list(x.shape)
    for k in range(1, dims + 1):
        if shape[-k] != 0:
            out[-k] = shape[-k]
    check(all(o > 0 for o in out), f"resize output shape {out} is not positive")
    return out


@kernel("resize")
def resize(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """iOS17 resize of the right-most resized_dims dims to shape (0 keeps a dim)."""
    x = array(inputs, "x")
    dims = to_int(get(inputs, "resized_dims"))
    out = _resize_shape(x, to_ints(get(inputs, "shape")), dims)
    interp = to_str(get(inputs, "interpolation_mode", "LINEAR")).upper()
    mode = to_str(get(inputs, "sampling_mode", "DEFAULT")).upper()
    check(interp in ("LINEAR", "NEAREST_NEIGHBOR"), f"unknown interpolation_mode '{interp}'")
    check(interp == "LINEAR" or mode == "DEFAULT",
          f"NEAREST_NEIGHBOR with sampling_mode {mode} is not supported")
    y = work(x) if interp == "LINEAR" else x
    for axis in range(x.ndim - dims, x.ndim):
        if interp == "LINEAR":
            y = linear_axis(y, axis, grid(x.shape[axis], out[axis], mode))
        else:
            y = np.take(y, nearest_index(x.shape[axis], out[axis], True), axis=axis)
    return [y.astype(x.dtype, copy=False)]

