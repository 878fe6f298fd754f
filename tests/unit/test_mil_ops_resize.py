"""MIL resize kernels: upsample_bilinear (align_corners / half_pixel_centers), resize_bilinear
sampling modes, nearest-neighbour ops and iOS17 resize, against torch and hand examples."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_py.runtimes.coreml.ops import KernelError
from tests.unit.mil_helpers import normal_draws, one, t

torch.set_num_threads(1)
rand = normal_draws(102)


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("shape,sh,sw", [((1, 2, 5, 7), 2, 3), ((2, 3, 20, 8), 1.5000125, 2.0),
                                         ((1, 2, 12, 10), 0.5, 0.75), ((1, 1, 7, 4), 2.6, 1.25)])
def test_upsample_bilinear_matches_torch_by_output_size(shape, sh, sw, align):
    x = rand(*shape)
    got = one("upsample_bilinear", x=x, scale_factor_height=np.float32(sh),
              scale_factor_width=np.float32(sw), align_corners=align)
    size = (int(np.floor(np.float32(sh) * shape[2])), int(np.floor(np.float32(sw) * shape[3])))
    want = F.interpolate(t(x), size=size, mode="bilinear", align_corners=align).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_scale_1_5000125_means_resize_to_size():
    x = rand(1, 1, 20, 20)
    got = one("upsample_bilinear", x=x, scale_factor_height=1.5000125,
              scale_factor_width=1.5000125, align_corners=False)
    assert got.shape == (1, 1, 30, 30)
    np.testing.assert_allclose(got, F.interpolate(t(x), size=(30, 30), mode="bilinear"),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("align,half,want", [
    (True, None, [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]),
    (False, None, [1.0, 1.0, 1.33333, 1.66667, 2.0, 2.0]),
    (False, True, [1.0, 1.0, 1.33333, 1.66667, 2.0, 2.0]),
    (False, False, [1.0, 1.33333, 1.66667, 2.0, 2.0, 2.0]),
    (True, False, [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]),
])
def test_upsample_bilinear_ios16_half_pixel_centers_hand_examples(align, half, want):
    # the coremltools iOS16 op test: x = [1, 2], scale (2, 3)
    x = np.array([1, 2], np.float32).reshape(1, 1, 1, 2)
    args = {} if half is None else {"half_pixel_centers": half}
    got = one("upsample_bilinear", x=x, scale_factor_height=2, scale_factor_width=3,
              align_corners=align, **args)
    assert got.shape == (1, 1, 2, 6)
    np.testing.assert_allclose(got.reshape(2, 6), [want, want], atol=1e-4)


def test_upsample_bilinear_defaults_and_ios15_fractional_example():
    x = np.array([0, 1], np.float32).reshape(1, 1, 2)
    np.testing.assert_allclose(one("upsample_bilinear", x=x, scale_factor_width=3).reshape(-1),
                               [0, 0.2, 0.4, 0.6, 0.8, 1], atol=1e-6)  # align_corners=True
    got = one("upsample_bilinear", x=x, scale_factor_height=1.0, scale_factor_width=2.6,
              align_corners=False)
    np.testing.assert_allclose(got.reshape(-1), [0, 0.1, 0.5, 0.9, 1], atol=1e-6)
    with pytest.raises(KernelError, match="cannot both be True"):
        one("upsample_bilinear", x=x, align_corners=True, half_pixel_centers=True)


def test_upsample_bilinear_fp16():
    x = rand(1, 3, 6, 5)
    got = one("upsample_bilinear", x=x.astype(np.float16), scale_factor_height=2,
              scale_factor_width=2, align_corners=False)
    assert got.dtype == np.float16
    want = F.interpolate(t(x.astype(np.float16).astype(np.float32)), scale_factor=2,
                         mode="bilinear")
    np.testing.assert_allclose(got.astype(np.float32), want.numpy(), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("mode,out,want", [
    ("UNALIGN_CORNERS", 5, [0.0, 0.1, 0.5, 0.9, 1.0]),
    ("STRICT_ALIGN_CORNERS", 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("ALIGN_CORNERS", 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ("DEFAULT", 5, [0.0, 0.4, 0.8, 1.0, 1.0]),
    ("OFFSET_CORNERS", 5, [0.1, 0.3, 0.5, 0.7, 0.9]),
    ("UNALIGN_CORNERS", 6, [0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0]),
    ("DEFAULT", 6, [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 1.0]),
    ("OFFSET_CORNERS", 6, [1 / 12, 0.25, 5 / 12, 7 / 12, 0.75, 11 / 12]),
    ("ALIGN_CORNERS", 1, [0.5]),
    ("STRICT_ALIGN_CORNERS", 1, [0.0]),
])
def test_resize_bilinear_sampling_modes_reproduce_the_definition_grids(mode, out, want):
    # with x = [0, 1] the output values are the grid points of the iOS15 definition
    x = np.array([0, 1], np.float32).reshape(1, 1, 1, 2)
    got = one("resize_bilinear", x=x, target_size_height=1, target_size_width=out,
              sampling_mode=mode)
    np.testing.assert_allclose(got.reshape(-1), want, atol=1e-6)


@pytest.mark.parametrize("mode,align", [("STRICT_ALIGN_CORNERS", True),
                                        ("UNALIGN_CORNERS", False)])
def test_resize_bilinear_against_torch(mode, align):
    x = rand(2, 3, 9, 6)
    got = one("resize_bilinear", x=x, target_size_height=14, target_size_width=4,
              sampling_mode=mode)
    want = F.interpolate(t(x), size=(14, 4), mode="bilinear", align_corners=align)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(KernelError, match="unknown sampling_mode"):
        one("resize_bilinear", x=x, sampling_mode="HALF")


@pytest.mark.parametrize("shape,sh,sw", [((1, 2, 4, 5), 2, 3), ((1, 1, 5, 7), 1.5, 0.5),
                                         ((2, 3, 6, 3), 1, 2.34)])
def test_upsample_nearest_neighbor_is_torch_nearest(shape, sh, sw):
    x = rand(*shape)
    got = one("upsample_nearest_neighbor", x=x, scale_factor_height=sh, scale_factor_width=sw)
    size = (int(np.floor(sh * shape[2])), int(np.floor(sw * shape[3])))
    np.testing.assert_array_equal(got, F.interpolate(t(x), size=size, mode="nearest").numpy())


def test_resize_nearest_neighbor_is_half_pixel_nearest():
    x = rand(1, 2, 5, 7)
    got = one("resize_nearest_neighbor", x=x, target_size_height=8, target_size_width=3)
    want = F.interpolate(t(x), size=(8, 3), mode="nearest-exact").numpy()
    np.testing.assert_array_equal(got, want)
    # the coremltools op test
    xv = np.array([0.37, 6.17], np.float32).reshape(1, 1, 2, 1)
    got = one("resize_nearest_neighbor", x=xv, target_size_height=2, target_size_width=3)
    np.testing.assert_array_equal(got.reshape(-1), np.float32([0.37, 0.37, 0.37, 6.17, 6.17, 6.17]))


def test_nearest_index_is_exact_integer_arithmetic():
    # i * in / out in floats gives 0.999... for i=3, in=2, out=6; the source must be row 1
    x = np.array([10, 20], np.float32).reshape(1, 1, 1, 2)
    got = one("upsample_nearest_neighbor", x=x, scale_factor_width=3)
    np.testing.assert_array_equal(got.reshape(-1), [10, 10, 10, 20, 20, 20])


def test_ios17_resize_coremltools_examples():
    # NEAREST_NEIGHBOR + DEFAULT picks source rows [0, 1, 1] for 2 -> 3 (half-pixel floor)
    x = np.float32([-6.174, 9.371]).reshape(1, 1, 1, 2, 1)
    got = one("resize", x=x, shape=[1, 1, 3, 2], resized_dims=np.uint32(2),
              interpolation_mode="NEAREST_NEIGHBOR", sampling_mode="DEFAULT")
    np.testing.assert_array_equal(got.reshape(-1), np.float32([-6.174, -6.174, 9.371, 9.371,
                                                               9.371, 9.371]))
    lin = one("resize", x=np.float32([0, 1]).reshape(1, 1, 2), shape=[1, 1, 5],
              resized_dims=np.uint32(2), interpolation_mode="LINEAR", sampling_mode="DEFAULT")
    np.testing.assert_allclose(lin.reshape(-1), [0, 0.4, 0.8, 1, 1], atol=1e-6)


def test_ios17_resize_linear_and_nearest():
    x = rand(1, 2, 6, 5)
    got = one("resize", x=x, shape=np.array([0, 9, 0], np.int32), resized_dims=2,
              sampling_mode="UNALIGN_CORNERS")
    assert got.shape == (1, 2, 9, 5)
    np.testing.assert_allclose(got, F.interpolate(t(x), size=(9, 5), mode="bilinear"),
                               rtol=1e-5, atol=1e-5)
    near = one("resize", x=x, shape=[12, 10], resized_dims=2, interpolation_mode="NEAREST_NEIGHBOR")
    np.testing.assert_array_equal(near, F.interpolate(t(x), size=(12, 10), mode="nearest-exact"))
