"""Compressed-weight ops: iOS16 constexpr_* (parameters attribute-bound, indices and masks
packed into uint8 bytes LSB first), iOS18 constexpr_* (sub-byte values arrive unpacked,
blockwise scales / grouped LUTs), iOS17 quantize / dequantize.

Definitions followed: iOS16 constexpr_ops.py, iOS18 compression.py, iOS17
quantization_ops.py, with coremltools.optimize._utils (restore_elements_from_packed_bits,
lut_to_dense, dequantize_by_scale_and_zp) for the exact layouts. constexpr_lut_to_dense and
constexpr_sparse_to_dense share their op type between iOS16 and iOS18: the iOS16 form is
recognised by its 'shape' parameter. Dequantisation runs in fp32 and is cast to the scale's
dtype once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import axis_of, check, get, to_int, to_ints, to_str
from runtime_py.runtimes.coreml.ops.elementwise import dtype_named


def _params(inputs: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    return {**attrs, **{k: v for k, v in inputs.items() if v is not None}}


def _arr(p: dict[str, Any], name: str) -> np.ndarray:
    return np.asarray(get(p, name))


def unpack_bits(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """count nbits-wide unsigned values from bytes packed LSB first (a value split across
    bytes fills the current byte's high bits, then the next byte's low bits)."""
    packed = np.asarray(packed).reshape(-1)
    check(packed.dtype in (np.uint8, np.int8), f"packed data must be uint8, got {packed.dtype}")
    bits = np.unpackbits(packed.view(np.uint8), bitorder="little")
    check(bits.size >= nbits * count,
          f"{packed.size} bytes hold {bits.size // nbits} {nbits}-bit values, need {count}")
    bits = bits[: nbits * count].reshape(count, nbits).astype(np.uint16)
    return (bits << np.arange(nbits, dtype=np.uint16)).sum(axis=1).astype(np.uint8)


def _along_axis(param: np.ndarray, data: np.ndarray, axis: int | None, name: str) -> np.ndarray:
    """A scalar or per-axis vector shaped to broadcast against data."""
    param = np.asarray(param)
    if param.ndim == 0 or param.ndim == data.ndim:
        return param
    check(param.ndim == 1 and axis is not None, f"'{name}' must be a scalar or a vector")
    axis = axis_of(axis, data.ndim)
    check(param.size == data.shape[axis],
          f"'{name}' has {param.size} values for dim {axis} of size {data.shape[axis]}")
    shape = [1] * data.ndim
    shape[axis] = -1
    return param.reshape(shape)


def _dequantize(data: np.ndarray, scale: np.ndarray, zero: np.ndarray | None,
                axis: int | None) -> np.ndarray:
    s = _along_axis(scale, data, axis, "scale").astype(np.float32)
    out = data.astype(np.float32)
    if zero is not None:
        out = out - _along_axis(zero, data, axis, "zero_point").astype(np.float32)
    return (out * s).astype(scale.dtype if scale.dtype.kind == "f" else np.float32)


@kernel("constexpr_affine_dequantize")
def constexpr_affine_dequantize(inputs: dict[str, Any], attrs: dict[str, Any]) -> list:
    """scale * (quantized_data - zero_point); scale/zero_point scalar or per-`axis` vector."""
    p = _params(inputs, attrs)
    data = _arr(p, "quantized_data")
    check(data.dtype in (np.uint8, np.int8), f"quantized_data must be uint8/int8, got {data.dtype}")
    axis = to_int(get(p, "axis"))
    axis_of(axis, data.ndim)
    return [_dequantize(data, _arr(p, "scale"), _arr(p, "zero_point"), axis)]


@kernel("constexpr_cast")
def constexpr_cast(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """source_val (fp16) cast to output_dtype (fp32)."""
    p = _params(inputs, attrs)
    return [_arr(p, "source_val").astype(dtype_named(to_str(get(p, "output_dtype"))))]


def _lut_ios16(p: dict[str, Any]) -> np.ndarray:
    lut = _arr(p, "lut").reshape(-1)
    shape = to_ints(get(p, "shape"))
    nbits = round(float(np.log2(lut.size))) if lut.size > 1 else 0
    check(lut.size in (2, 4, 16, 64, 256) and 2 ** nbits == lut.size,
          f"lut must have 2, 4, 16, 64 or 256 entries, got {lut.size}")
    count = int(np.prod(shape, dtype=np.int64))
    packed = _arr(p, "indices").reshape(-1)
    check(packed.size == -(-nbits * count // 8),
          f"indices has {packed.size} bytes, expected ceil({nbits} * {count} / 8)")
    return lut[unpack_bits(packed, nbits, count)].reshape(shape)


def lut_to_dense(indices: np.ndarray, lut: np.ndarray, vector_axis: int | None) -> np.ndarray:
    """iOS18 LUT decode: lut [*groups, 2^nbits, vector_size]; group g along dim k covers
    indices.shape[k] / groups[k] consecutive rows; vectors fill along vector_axis."""
    indices = np.asarray(indices).astype(np.int64)
    rank = indices.ndim
    check(rank >= 1 and lut.ndim == rank + 2,
          f"lut rank {lut.ndim} must be indices rank {rank} + 2")
    palettes, vsize = lut.shape[-2], lut.shape[-1]
    check(indices.size == 0 or (indices.min() >= 0 and indices.max() < palettes),
          f"indices must be in [0, {palettes})")
    index = []
    for k in range(rank):
        size, groups = indices.shape[k], lut.shape[k]
        check(groups > 0 and size % groups == 0, f"dim {k} ({size}) not divisible by {groups}")
        shape = [1] * rank
        shape[k] = -1
        index.append((np.arange(size) // (size // groups)).reshape(shape))
    out = lut[(*index, indices)]  # indices.shape + [vector_size]
    if vsize == 1:
        return out[..., 0]
    check(vector_axis is not None, "vector_axis is required when the lut holds vectors")
    axis = axis_of(vector_axis, rank)
    out = np.moveaxis(out, -1, axis + 1)
    shape = list(indices.shape)
    shape[axis] *= vsize
    return out.reshape(shape)


@kernel("constexpr_lut_to_dense")
def constexpr_lut_to_dense(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Palettized weights: iOS16 (packed uint8 indices + shape) or iOS18 (unpacked indices,
    grouped / vector lut)."""
    p = _params(inputs, attrs)
    if p.get("shape") is not None:
        return [_lut_ios16(p)]
    va = None if p.get("vector_axis") is None else to_int(p["vector_axis"])
    return [lut_to_dense(_arr(p, "indices"), _arr(p, "lut"), va)]


def sparse_to_dense(nonzero: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A mask-shaped tensor holding nonzero (row-major) where mask is set, 0 elsewhere."""
    nonzero = np.asarray(nonzero).reshape(-1)
    bits = np.asarray(mask) != 0
    check(int(bits.sum()) == nonzero.size,
          f"mask has {int(bits.sum())} set bits for {nonzero.size} nonzero values")
    out = np.zeros(bits.shape, dtype=nonzero.dtype)
    out[bits] = nonzero
    return out


@kernel("constexpr_sparse_to_dense")
def constexpr_sparse_to_dense(inputs: dict[str, Any], attrs: dict[str, Any]) -> list:
    """Sparse weights: iOS16 (mask bits packed LSB first + shape) or iOS18 (uint1 mask)."""
    p = _params(inputs, attrs)
    if p.get("shape") is None:
        return [sparse_to_dense(_arr(p, "nonzero_data"), _arr(p, "mask"))]
    shape = to_ints(p["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    packed = _arr(p, "mask").reshape(-1)
    check(packed.size == -(-count // 8), f"mask has {packed.size} bytes, expected ceil({count}/8)")
    bits = unpack_bits(packed, 1, packed.size * 8)
    check(not bits[count:].any(), "padding bits of mask must be 0")
    return [sparse_to_dense(_arr(p, "nonzero_data"), bits[:count].reshape(shape))]


def blockwise_shift_scale(data: np.ndarray, scale: np.ndarray,
                          offset: np.ndarray | None) -> np.ndarray:
    """scale * (data - offset) with scale/offset repeated blockwise to data's shape."""
    check(scale.ndim == data.ndim and data.ndim >= 1,
          f"scale rank {scale.ndim} must equal data rank {data.ndim}")
    check(offset is None or offset.shape == scale.shape,
          f"offset shape {None if offset is None else list(offset.shape)} != scale's")
    s, o = scale.astype(np.float32), None if offset is None else offset.astype(np.float32)
    for axis, (d, g) in enumerate(zip(data.shape, scale.shape)):
        check(g > 0 and d % g == 0, f"data dim {axis} ({d}) not divisible by scale dim ({g})")
        if d // g > 1:
            s = np.repeat(s, d // g, axis=axis)
            o = None if o is None else np.repeat(o, d // g, axis=axis)
    out = data.astype(np.float32)
    if o is not None:
        out = out - o
    return (out * s).astype(scale.dtype)


@kernel("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(inputs: dict[str, Any], attrs: dict[str, Any]) -> list:
    """iOS18 blockwise dequantisation: scale[i // block] * (data - offset[i // block])."""
    p = _params(inputs, attrs)
    offset = None if p.get("offset") is None else _arr(p, "offset")
    return [blockwise_shift_scale(_arr(p, "data"), _arr(p, "scale"), offset)]


@kernel("constexpr_lut_to_sparse")
def constexpr_lut_to_sparse(inputs: dict[str, Any], attrs: dict[str, Any]) -> list:
    """iOS18: [mask, nonzero values] of a LUT decode applied to sparse indices."""
    p = _params(inputs, attrs)
    mask = _arr(p, "indices_mask")
    lut = _arr(p, "lut")
    va = None if p.get("vector_axis") is None else to_int(p["vector_axis"])
    dense = lut_to_dense(sparse_to_dense(_arr(p, "indices_nonzero_data"), mask), lut, va)
    out_mask = mask
    if lut.shape[-1] > 1:
        out_mask = np.repeat(mask, lut.shape[-1], axis=axis_of(va, mask.ndim))
    return [out_mask.astype(np.uint8), dense[out_mask != 0]]


@kernel("constexpr_sparse_blockwise_shift_scale")
def constexpr_sparse_blockwise_shift_scale(inputs: dict[str, Any], attrs: dict[str, Any]):
    """iOS18: [mask, dequantised nonzero values] of blockwise dequantisation of sparse data."""
    p = _params(inputs, attrs)
    mask = _arr(p, "data_mask")
    offset = None if p.get("offset") is None else _arr(p, "offset")
    dense = blockwise_shift_scale(sparse_to_dense(_arr(p, "nonzero_data"), mask),
                                  _arr(p, "scale"), offset)
    return [mask.astype(np.uint8), dense[mask != 0]]


def _q_params(inputs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:
    x, scale = np.asarray(get(inputs, "input")), np.asarray(get(inputs, "scale"))
    zero = None if inputs.get("zero_point") is None else np.asarray(inputs["zero_point"])
    axis = None if inputs.get("axis") is None else to_int(inputs["axis"])
    check(scale.ndim == 0 or axis is not None, "axis is required for vector scale/zero_point")
    return x, scale, zero, axis


@kernel("dequantize")
def dequantize(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """iOS17: scale * (input - zero_point), zero_point default 0."""
    x, scale, zero, axis = _q_params(inputs)
    check(x.dtype in (np.uint8, np.int8), f"input must be uint8/int8, got {x.dtype}")
    return [_dequantize(x, scale, zero, axis)]


@kernel("quantize")
def quantize(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """iOS17: clip(round(input / scale) + zero_point) to output_dtype (int8/uint8);
    rounds half to even (np.round)."""
    x, scale, zero, axis = _q_params(inputs)
    dtype = to_str(get(inputs, "output_dtype"))
    check(dtype in ("int8", "uint8"), f"output_dtype must be int8/uint8, got {dtype}")
    s = _along_axis(scale, x, axis, "scale").astype(np.float32)
    q = np.round(x.astype(np.float32) / s)
    if zero is not None:
        q = q + _along_axis(zero, x, axis, "zero_point").astype(np.float32)
    info = np.iinfo(dtype)
    return [np.clip(q, info.min, info.max).astype(dtype)]
