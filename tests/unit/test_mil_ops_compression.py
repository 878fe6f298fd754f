"""Compressed-weight kernels: sub-byte packing by hand, per-axis / blockwise dequantisation,
grouped and vector LUTs, with coremltools' own decompressors as a second opinion."""
from __future__ import annotations

import numpy as np
import pytest

from runtime_py.runtimes.coreml.ops import KERNELS, KernelError

# importing coremltools (the second opinion) warns about torch/executorch deprecations
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]
RNG = np.random.default_rng(5)


def run(op: str, attrs: dict | None = None, **inputs) -> list[np.ndarray]:
    return KERNELS[op](inputs, attrs or {})


# ---------------------------------------------------------------- iOS16, packed bits

def test_lut_2bit_indices_are_packed_lsb_first_hand_example():
    # iOS16 docstring: n_bits=2, shape (5,): byte0 = |i3=01 i2=10 i1=11 i0=00|, byte1 = |..i4=11|
    byte0, byte1 = 0b01_10_11_00, 0b00_00_00_11
    lut = np.array([10, 20, 30, 40], np.float32)
    out, = run("constexpr_lut_to_dense", attrs={"indices": np.array([byte0, byte1], np.uint8),
                                                "lut": lut, "shape": np.array([5], np.uint32)})
    np.testing.assert_array_equal(out, np.float32([10, 40, 30, 20, 40]))  # i = 0,3,2,1,3


def test_lut_6bit_index_split_across_bytes_hand_example():
    # values 5, 63, 42 as 6-bit LSB-first: bits 101000 111111 010101 (+ 6 zero bits)
    # byte0 = bits 0-7 = 1,0,1,0,0,0,1,1 -> 197; byte1 = 1,1,1,1,0,1,0,1 -> 175; byte2 -> 2
    packed = np.array([197, 175, 2], np.uint8)
    lut = np.arange(64, dtype=np.float32) * 0.5
    out, = run("constexpr_lut_to_dense", attrs={"indices": packed, "lut": lut,
                                                    "shape": np.array([3, 1], np.uint32)})
    np.testing.assert_array_equal(out, np.float32([[2.5], [31.5], [21.0]]))


@pytest.mark.parametrize("nbits", [1, 2, 4, 6, 8])
def test_lut_packing_agrees_with_coremltools(nbits):
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import (
        constexpr_lut_to_dense as ref,
    )
    from coremltools.optimize._utils import pack_elements_into_bits

    shape = (3, 5, 7)
    idx = RNG.integers(0, 2 ** nbits, size=shape).astype(np.uint8)
    lut = RNG.normal(size=2 ** nbits).astype(np.float16)
    packed = pack_elements_into_bits(idx.reshape(-1), nbits)
    out, = run("constexpr_lut_to_dense", attrs={"indices": packed, "lut": lut,
                                                    "shape": np.array(shape, np.uint32)})
    assert out.dtype == np.float16 and out.shape == shape
    np.testing.assert_array_equal(out, lut[idx])
    np.testing.assert_array_equal(out, ref.decompress(lut, packed, np.array(shape)))


def test_sparse_mask_bits_lsb_first_hand_example():
    # iOS16 docstring: shape (5,), mask = |x x x 0 1 1 0 0| -> elements 2 and 3 are set
    out, = run("constexpr_sparse_to_dense", attrs={
        "nonzero_data": np.float32([7, 9]), "mask": np.array([0b00001100], np.uint8),
        "shape": np.array([5], np.uint32)})
    np.testing.assert_array_equal(out, np.float32([0, 0, 7, 9, 0]))
    # 10 elements over 2 bytes, row-major [2, 5]: bits 0, 7, 8 set
    out, = run("constexpr_sparse_to_dense", attrs={
        "nonzero_data": np.float32([1, 2, 3]), "mask": np.array([0b10000001, 0b00000001], np.uint8),
        "shape": np.array([2, 5], np.uint32)})
    np.testing.assert_array_equal(out, np.float32([[1, 0, 0, 0, 0], [0, 0, 2, 3, 0]]))


def test_sparse_refuses_bad_masks():
    bad_count = {"nonzero_data": np.float32([1]), "mask": np.array([3], np.uint8),
                     "shape": np.array([4], np.uint32)}
    with pytest.raises(KernelError, match="2 set bits for 1"):
        run("constexpr_sparse_to_dense", attrs=bad_count)
    padded = {"nonzero_data": np.float32([1, 2]), "mask": np.array([0b10000001], np.uint8),
                  "shape": np.array([4], np.uint32)}
    with pytest.raises(KernelError, match="padding bits"):
        run("constexpr_sparse_to_dense", attrs=padded)


def test_affine_dequantize_per_axis_zero_points_by_hand():
    q = np.array([[1, 3, 5], [3, 4, 9]], np.uint8)
    out, = run("constexpr_affine_dequantize", attrs={
        "quantized_data": q, "zero_point": np.array([1, 3], np.uint8),
        "scale": np.float32([0.5, 2.0]), "axis": np.int32(0)})
    np.testing.assert_array_equal(out, np.float32([[0, 1, 2], [0, 2, 12]]))
    out, = run("constexpr_affine_dequantize", attrs={
        "quantized_data": q, "zero_point": np.array([1, 2, 3], np.uint8),
        "scale": np.float32(0.25), "axis": -1})
    np.testing.assert_array_equal(out, np.float32([[0, 0.25, 0.5], [0.5, 0.5, 1.5]]))


def test_affine_dequantize_int8_fp16_scale_agrees_with_coremltools():
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import (
        constexpr_affine_dequantize as ref,
    )

    q = RNG.integers(-128, 128, size=(4, 3, 2, 2)).astype(np.int8)
    zp = RNG.integers(-5, 5, size=4).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, size=4).astype(np.float16)
    out, = run("constexpr_affine_dequantize", attrs={"quantized_data": q, "zero_point": zp,
                                                         "scale": scale, "axis": 0})
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, ref.decompress(q, zp, scale, 0))
    with pytest.raises(KernelError, match="3 values for dim 0"):
        run("constexpr_affine_dequantize", attrs={"quantized_data": q, "zero_point": zp[:3],
                                                      "scale": scale, "axis": 0})


def test_constexpr_cast():
    out, = run("constexpr_cast",
               attrs={"source_val": np.float16([1.5, -2]), "output_dtype": "fp32"})
    assert out.dtype == np.float32 and out.tolist() == [1.5, -2.0]


# ---------------------------------------------------------------- iOS18, unpacked sub-byte

def test_blockwise_shift_scale_by_hand_and_against_coremltools():
    from coremltools.converters.mil.mil.ops.defs.iOS18.compression import (
        constexpr_blockwise_shift_scale as ref,
    )

    data = RNG.integers(-8, 8, size=(4, 6)).astype(np.int8)  # int4 values, unpacked
    scale = RNG.uniform(0.1, 1.0, size=(2, 3)).astype(np.float32)
    offset = RNG.integers(-2, 3, size=(2, 3)).astype(np.int8)
    out, = run("constexpr_blockwise_shift_scale", data=data, scale=scale, offset=offset)
    # element [3, 5] lies in block [3 // 2, 5 // 2] = [1, 2]
    assert out[3, 5] == np.float32(scale[1, 2] * (data[3, 5] - offset[1, 2]))
    np.testing.assert_allclose(out, ref.decompress(data, scale, offset), rtol=1e-6)
    no_offset, = run("constexpr_blockwise_shift_scale", data=data,
                     scale=scale.astype(np.float16))
    assert no_offset.dtype == np.float16
    np.testing.assert_allclose(no_offset, ref.decompress(data, scale.astype(np.float16), None),
                               rtol=1e-3)
    with pytest.raises(KernelError, match="not divisible"):
        run("constexpr_blockwise_shift_scale", data=data, scale=np.ones((3, 3), np.float32))


def test_ios18_grouped_lut_docstring_case_1():
    indices = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3], np.uint8).reshape(6, 2)
    lut = np.float16([1, 5, 9, 13, 2, 10, 18, 26]).reshape(2, 1, 4, 1)
    out, = run("constexpr_lut_to_dense", indices=indices, lut=lut)
    np.testing.assert_array_equal(out, np.float16([[9, 13], [13, 1], [5, 1], [26, 2], [18, 10],
                                                   [2, 26]]))


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_ios18_vector_lut_docstring_case_2(axis):
    indices = np.array([[[0, 0], [1, 0]], [[1, 1], [0, 0]]], np.uint8)  # uint1
    a, b = [1, 2, 3], [7, 8, 9]
    lut = np.int8([a, b]).reshape(1, 1, 1, 2, 3)
    out, = run("constexpr_lut_to_dense", indices=indices, lut=lut, vector_axis=axis)
    if axis == 1:
        want = [[[1, 1], [2, 2], [3, 3], [7, 1], [8, 2], [9, 3]],
                [[7, 7], [8, 8], [9, 9], [1, 1], [2, 2], [3, 3]]]
    else:
        want = [[[1, 2, 3, 1, 2, 3], [7, 8, 9, 1, 2, 3]],
                [[7, 8, 9, 7, 8, 9], [1, 2, 3, 1, 2, 3]]]
    np.testing.assert_array_equal(out, np.int8(want))


def test_ios18_lut_agrees_with_coremltools_and_needs_vector_axis():
    from coremltools.optimize._utils import lut_to_dense as ref

    indices = RNG.integers(0, 16, size=(4, 6, 2)).astype(np.uint8)
    lut = RNG.normal(size=(2, 3, 1, 16, 2)).astype(np.float32)
    out, = run("constexpr_lut_to_dense", indices=indices, lut=lut, vector_axis=np.int32(0))
    np.testing.assert_array_equal(out, ref(indices, lut, 0))
    with pytest.raises(KernelError, match="vector_axis is required"):
        run("constexpr_lut_to_dense", indices=indices, lut=lut)
    with pytest.raises(KernelError, match=r"in \[0, 16\)"):
        run("constexpr_lut_to_dense", indices=indices + 16, lut=lut, vector_axis=0)


def test_ios18_sparse_to_dense_with_unpacked_mask():
    mask = np.array([[1, 0, 1], [0, 0, 1]], np.uint8)
    out, = run("constexpr_sparse_to_dense", nonzero_data=np.float16([4, 5, 6]), mask=mask)
    np.testing.assert_array_equal(out, np.float16([[4, 0, 5], [0, 0, 6]]))


def test_ios18_lut_to_sparse_and_sparse_blockwise_docstring_examples():
    mask = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1], [0, 1, 1, 0, 1, 0],
                     [0, 0, 0, 1, 0, 0]], np.uint8)
    nz = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1], np.uint8)
    out_mask, values = run("constexpr_lut_to_sparse", indices_mask=mask, indices_nonzero_data=nz,
                           lut=np.float16([2, 3]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(out_mask, mask)
    np.testing.assert_array_equal(values, np.float16([2, 3, 3, 2, 3, 3, 2, 2, 3]))
    vmask, vvalues = run("constexpr_lut_to_sparse", indices_mask=mask, indices_nonzero_data=nz,
                         lut=np.float16([[2, 2], [3, 3]]).reshape(1, 1, 2, 2), vector_axis=0)
    assert vmask.shape == (8, 6) and vvalues.size == 18
    dmask = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], np.uint8)
    m, v = run("constexpr_sparse_blockwise_shift_scale", data_mask=dmask,
               nonzero_data=np.int8([10, 11, 3, 4, 5, 6, 7, 8, 9]),
               scale=np.float32([[0.1, 0.2, 0.3, 0.4]]), offset=np.int8([[1, 2, 3, 4]]))
    np.testing.assert_array_equal(m, dmask)
    np.testing.assert_allclose(v, [0.9, 1.8, 0.2, 0.4, 0.6, 0.9, 1.2, 0.7, 1.4], rtol=1e-6)


def test_ios17_quantize_dequantize_round_trip_per_axis():
    x = np.clip(RNG.normal(size=(3, 4)), -2.5, 2.5).astype(np.float32)
    scale = np.float32([0.03, 0.03, 0.05])
    zp = np.array([128, 120, 130], np.uint8)
    q, = run("quantize", input=x, scale=scale, zero_point=zp, axis=0, output_dtype="uint8")
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q, np.clip(np.round(x / scale[:, None]) + zp[:, None], 0, 255))
    back, = run("dequantize", input=q, scale=scale, zero_point=zp, axis=0)
    np.testing.assert_allclose(back, x, atol=0.026)  # half a step
    with pytest.raises(KernelError, match="axis is required"):
        run("dequantize", input=q, scale=scale)
