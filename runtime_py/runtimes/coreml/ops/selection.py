"""Indexing and selection: select, gather, gather_along_axis, gather_nd, slice_by_index,
slice_by_size, topk, argsort.

Definitions followed: iOS15 control_flow select, iOS16/iOS17 scatter_gather.py (gather
batch_dims; validate_indices ignored: out-of-range indices always raise, negative indices
wrap as in iOS15/16), iOS15 slice_by_index (numpy slicing; squeeze_mask picks begin[i]),
iOS17 topk (k=-1 = all, output_indices_dtype).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    axis_of,
    check,
    get,
    to_bool,
    to_bools,
    to_int,
    to_ints,
    to_str,
)
from runtime_py.runtimes.coreml.ops.elementwise import operand, settle


@kernel("select")
def select(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """a where cond else b, with numpy broadcasting."""
    cond = np.asarray(get(inputs, "cond")).astype(bool)
    a, b = operand(get(inputs, "a")), operand(get(inputs, "b"))
    return [settle(np.where(cond, a, b), a, b)]


def _indices(inputs: dict[str, Any], size: int) -> np.ndarray:
    idx = array(inputs, "indices")
    check(idx.dtype.kind in "iu", f"indices must be integers, got {idx.dtype}")
    idx = idx.astype(np.int64)
    check(idx.size == 0 or (idx.min() >= -size and idx.max() < size),
          f"indices out of range [-{size}, {size})")
    return np.where(idx < 0, idx + size, idx)


@kernel("gather")
def gather(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Take slices of x along axis (default 0) at indices; batch_dims leading dims shared
    by x and indices (output shape D[:axis] + N[batch_dims:] + D[axis+1:])."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis", 0)), x.ndim)
    bd = to_int(get(inputs, "batch_dims", 0))
    idx = _indices(inputs, x.shape[axis])
    check(0 <= bd <= min(axis, idx.ndim), f"batch_dims {bd} must be <= axis and indices rank")
    if bd == 0:
        return [np.take(x, idx, axis=axis)]
    check(x.shape[:bd] == idx.shape[:bd],
          f"batch dims differ: x {list(x.shape[:bd])} vs indices {list(idx.shape[:bd])}")
    xs = x.reshape(-1, *x.shape[bd:])
    ids = idx.reshape(-1, *idx.shape[bd:])
    parts = [np.take(xs[i], ids[i], axis=axis - bd) for i in range(xs.shape[0])]
    out = np.stack(parts) if parts else np.zeros((0,), x.dtype)
    return [out.reshape(*x.shape[:bd], *out.shape[1:])]


@kernel("gather_along_axis")
def gather_along_axis(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """numpy take_along_axis (indices has x's rank)."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis", 0)), x.ndim)
    idx = _indices(inputs, x.shape[axis])
    check(idx.ndim == x.ndim, f"indices rank {idx.ndim} != x rank {x.ndim}")
    return [np.take_along_axis(x, idx, axis=axis)]


@kernel("gather_nd")
def gather_nd(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x[indices[..., 0], ..., indices[..., K-1]] (batch_dims = 0 only)."""
    x = array(inputs, "x")
    check(to_int(get(inputs, "batch_dims", 0)) == 0, "gather_nd supports batch_dims = 0 only")
    idx = array(inputs, "indices").astype(np.int64)
    check(idx.ndim >= 1 and idx.shape[-1] <= x.ndim,
          f"indices' last dim {idx.shape[-1] if idx.ndim else None} exceeds x rank {x.ndim}")
    cols = []
    for k in range(idx.shape[-1]):
        size = x.shape[k]
        col = idx[..., k]
        check(col.size == 0 or (col.min() >= -size and col.max() < size),
              f"indices out of range along dim {k} of size {size}")
        cols.append(np.where(col < 0, col + size, col))
    return [x[tuple(cols)]]


def _slice_masks(inputs: dict[str, Any], name: str, rank: int) -> list[bool]:
    if inputs.get(name) is None:
        return [False] * rank
    mask = to_bools(inputs[name])
    check(len(mask) == rank, f"{name} needs {rank} values, got {len(mask)}")
    return mask


@kernel("slice_by_index")
def slice_by_index(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x[begin:end:stride] per dim with begin/end/squeeze masks (numpy semantics)."""
    x = array(inputs, "x")
    rank = x.ndim
    begin, end = to_ints(get(inputs, "begin")), to_ints(get(inputs, "end"))
    stride = to_ints(get(inputs, "stride", [1] * rank))
    check(len(begin) == len(end) == len(stride) == rank,
          f"begin/end/stride need {rank} values, got {len(begin)}/{len(end)}/{len(stride)}")
    check(all(s != 0 for s in stride), f"stride must not be 0, got {stride}")
    bmask, emask = _slice_masks(inputs, "begin_mask", rank), _slice_masks(inputs, "end_mask", rank)
    smask = _slice_masks(inputs, "squeeze_mask", rank)
    index = []
    for d in range(rank):
        if smask[d]:
            b = 0 if bmask[d] else (begin[d] + x.shape[d] if begin[d] < 0 else begin[d])
            check(0 <= b < x.shape[d], f"squeezed index {begin[d]} out of range for dim {d}")
            index.append(b)
        else:
            index.append(slice(None if bmask[d] else begin[d], None if emask[d] else end[d],
                               stride[d]))
    return [np.asarray(x[tuple(index)])]


@kernel("slice_by_size")
def slice_by_size(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x[begin : begin + size] per dim; size -1 takes the rest; negative begin wraps."""
    x = array(inputs, "x")
    begin, size = to_ints(get(inputs, "begin")), to_ints(get(inputs, "size"))
    check(len(begin) == len(size) == x.ndim, f"begin/size need {x.ndim} values")
    index = []
    for d, (b, s) in enumerate(zip(begin, size)):
        b = b + x.shape[d] if b < 0 else b
        e = x.shape[d] if s == -1 else b + s
        check(0 <= b <= e <= x.shape[d], f"slice [{b}, {e}) out of range for dim {d}")
        index.append(slice(b, e))
    return [x[tuple(index)]]


def _order(x: np.ndarray, axis: int, ascending: bool) -> np.ndarray:
    """Stable sort order along axis (ties keep the lower index first)."""
    key = x if ascending else -(x.astype(np.int64) if x.dtype.kind in "ub" else x)
    return np.argsort(key, axis=axis, kind="stable")


@kernel("topk")
def topk(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """[values, indices] of the k largest (ascending: smallest) along axis (default -1)."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis", -1)), x.ndim)
    k = to_int(get(inputs, "k", 1))
    k = x.shape[axis] if k == -1 else k
    check(0 < k <= x.shape[axis], f"k={k} out of range for axis size {x.shape[axis]}")
    order = np.take(_order(x, axis, to_bool(get(inputs, "ascending", False))), range(k), axis)
    values = np.take_along_axis(x, order, axis=axis)
    if not to_bool(get(inputs, "return_indices", True)):
        return [values]
    dtype = to_str(get(inputs, "output_indices_dtype", "int32")).lower()
    check(dtype in ("int32", "uint16"), f"output_indices_dtype must be int32/uint16, got {dtype}")
    return [values, order.astype(dtype)]


@kernel("argsort")
def argsort(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """int32 indices sorting x along axis (default -1), descending unless ascending."""
    x = array(inputs, "x")
    axis = axis_of(to_int(get(inputs, "axis", -1)), x.ndim)
    order = _order(x, axis, to_bool(get(inputs, "ascending", False)))
    return [order.astype(np.int32)]
