"""Shape ops: reshape, transpose, squeeze, expand_dims, concat, split, stack, tile, pad,
identity, shape, fill, fill_like, range_1d, flatten2d, reverse, cumsum.

Definitions followed: iOS15 tensor_transformation.py / tensor_operation.py (iOS17 versions
only widen dtypes), iOS16 fill_like. pad's flat list pads the LAST len(pad)/2 dims,
[begin, end] per dim.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    axes_of,
    axis_of,
    check,
    get,
    scalar,
    to_bool,
    to_float,
    to_int,
    to_ints,
    to_str,
)


def _values(inputs: dict[str, Any]) -> list[np.ndarray]:
    values = get(inputs, "values")
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    check(len(values) > 0, "'values' is empty")
    return [np.asarray(v) for v in values]


@kernel("reshape")
def reshape(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x with a new shape; -1 infers one dim, 0 copies x's dim when len(shape) == rank."""
    x = array(inputs, "x")
    shape = to_ints(get(inputs, "shape"))
    if len(shape) == x.ndim:
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    check(shape.count(-1) <= 1, f"shape {shape} has more than one -1")
    return [np.reshape(x, shape)]


@kernel("transpose")
def transpose(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x with its axes permuted by perm."""
    x = array(inputs, "x")
    perm = axes_of(get(inputs, "perm"), x.ndim)
    check(len(perm) == x.ndim, f"perm {list(perm)} is not a permutation of rank {x.ndim}")
    return [np.transpose(x, perm)]


@kernel("squeeze")
def squeeze(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Drop size-1 axes (all of them when axes is absent)."""
    x = array(inputs, "x")
    if inputs.get("axes") is None:
        return [np.squeeze(x)]
    axes = axes_of(inputs["axes"], x.ndim)
    bad = [a for a in axes if x.shape[a] != 1]
    check(not bad, f"cannot squeeze axes {bad} of shape {list(x.shape)} (size != 1)")
    return [np.squeeze(x, axis=axes)]


@kernel("expand_dims")
def expand_dims(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Insert size-1 dims at axes (negative axes count in the output rank)."""
    x = array(inputs, "x")
    axes = to_ints(get(inputs, "axes"))
    out_rank = x.ndim + len(axes)
    check(all(-out_rank <= a < out_rank for a in axes),
          f"axes {axes} out of range for output rank {out_rank}")
    shape = list(x.shape)
    for a in sorted(a + out_rank if a < 0 else a for a in axes):
        shape.insert(a, 1)
    return [np.reshape(x, shape)]


@kernel("concat")
def concat(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Join values along axis; interleave=True alternates equal-shaped inputs."""
    values = _values(inputs)
    axis = axis_of(to_int(get(inputs, "axis")), values[0].ndim)
    if not to_bool(get(inputs, "interleave", False)):
        return [np.concatenate(values, axis=axis)]
    shapes = {v.shape for v in values}
    check(len(shapes) == 1, f"interleave needs equal shapes, got {sorted(shapes)}")
    stacked = np.stack(values, axis=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return [stacked.reshape(shape)]


@kernel("split")
def split(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x cut along axis into num_splits equal parts or parts of split_sizes."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis")), x.ndim)
    size = x.shape[axis]
    if inputs.get("split_sizes") is not None:
        sizes = to_ints(inputs["split_sizes"])
        check(sum(sizes) == size and min(sizes) >= 0,
              f"split_sizes {sizes} do not sum to dim {size}")
    else:
        n = to_int(get(inputs, "num_splits"))
        check(n > 0 and size % n == 0, f"dim {size} cannot be split into {n} equal parts")
        sizes = [size // n] * n
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@kernel("stack")
def stack(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Stack equal-shaped values along a new axis."""
    values = _values(inputs)
    axis = axis_of(to_int(get(inputs, "axis")), values[0].ndim + 1)
    return [np.stack(values, axis=axis)]


@kernel("tile")
def tile(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x repeated reps[i] times along each dim."""
    x = array(inputs, "x")
    reps = to_ints(get(inputs, "reps"))
    check(len(reps) == x.ndim, f"reps {reps} needs {x.ndim} values")
    check(min(reps, default=1) >= 1, f"reps must be >= 1, got {reps}")
    return [np.tile(x, reps)]


@kernel("pad")
def pad(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Pad the last len(pad)/2 dims; mode constant (constant_val, default 0), reflect or
    replicate."""
    x = array(inputs, "x")
    flat = to_ints(get(inputs, "pad"))
    check(len(flat) % 2 == 0 and len(flat) // 2 <= x.ndim,
          f"pad {flat} must hold 2 values per padded dim, at most {2 * x.ndim}")
    check(min(flat, default=0) >= 0, f"pad values must be >= 0, got {flat}")
    mode = to_str(get(inputs, "mode", "constant")).lower()
    widths = [(0, 0)] * (x.ndim - len(flat) // 2)
    widths += [(flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]
    if mode == "constant":
        value = to_float(get(inputs, "constant_val", 0.0))
        return [np.pad(x, widths, mode="constant", constant_values=value)]
    check(mode in ("reflect", "replicate"), f"unknown pad mode '{mode}'")
    limit = 1 if mode == "reflect" else 0
    for d, (a, b) in enumerate(widths):
        check(max(a, b) <= x.shape[d] - limit or (a, b) == (0, 0),
              f"{mode} pad {max(a, b)} too large for dim of size {x.shape[d]}")
    return [np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")]


@kernel("identity")
def identity(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x unchanged."""
    return [array(inputs, "x")]


@kernel("shape")
def shape(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x's shape as int32."""
    return [np.asarray(array(inputs, "x").shape, dtype=np.int32)]


def _fill_value(inputs: dict[str, Any]) -> np.ndarray:
    value = get(inputs, "value", 0.0)
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).reshape(-1)[:1].reshape(())
    if isinstance(value, bool):
        return np.asarray(value)
    return np.asarray(value, dtype=np.int32 if isinstance(value, int) else np.float32)


@kernel("fill")
def fill(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """A tensor of the given shape filled with value (default 0.0)."""
    dims = to_ints(get(inputs, "shape"))
    check(all(d >= 0 for d in dims), f"shape {dims} has negative dims")
    value = _fill_value(inputs)
    return [np.full(dims, value, dtype=value.dtype)]


@kernel("fill_like")
def fill_like(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """A tensor shaped like ref_tensor filled with value (default 0.0)."""
    ref = array(inputs, "ref_tensor")
    value = _fill_value(inputs)
    return [np.full(ref.shape, value, dtype=value.dtype)]


@kernel("range_1d")
def range_1d(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """numpy arange(start, end, step) in the inputs' dtype."""
    raw = [get(inputs, n) for n in ("start", "end", "step")]
    vals = [scalar(v) for v in raw]
    check(vals[2] != 0, "step must not be 0")
    floats = any(isinstance(v, float) for v in vals)
    dtype = next((np.asarray(r).dtype for r in raw if isinstance(r, (np.ndarray, np.generic))),
                 np.dtype(np.float32 if floats else np.int32))
    if dtype.kind in "iu":
        dtype = np.dtype(np.float32 if floats else np.int32)
    return [np.arange(vals[0], vals[1], vals[2]).astype(dtype)]


@kernel("flatten2d")
def flatten2d(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x as 2-D: [prod(shape[:axis]), prod(shape[axis:])], axis default 1."""
    x = array(inputs, "x")
    axis = to_int(get(inputs, "axis", 1))
    check(-x.ndim <= axis <= x.ndim, f"axis {axis} out of range for rank {x.ndim}")
    pre = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape(pre, int(np.prod(x.shape[axis:], dtype=np.int64)))]


@kernel("reverse")
def reverse(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x reversed along axes (all when absent)."""
    x = array(inputs, "x")
    if inputs.get("axes") is None:
        return [np.flip(x)]
    return [np.flip(x, axis=axes_of(inputs["axes"], x.ndim))]


@kernel("cumsum")
def cumsum(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Cumulative sum along axis (default 0); exclusive starts at 0; reverse runs backward."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis", 0)), x.ndim)
    exclusive = to_bool(get(inputs, "exclusive", False))
    backward = to_bool(get(inputs, "reverse", False))
    data = np.flip(x, axis) if backward else x
    acc = np.float32 if x.dtype == np.float16 else None
    out = np.cumsum(data, axis=axis, dtype=acc)
    if exclusive:
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=axis)),
                              np.take(out, range(x.shape[axis] - 1), axis=axis)], axis=axis)
    out = np.flip(out, axis) if backward else out
    return [out.astype(x.dtype, copy=False)]
