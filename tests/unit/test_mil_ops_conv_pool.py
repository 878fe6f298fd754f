"""MIL conv / conv_transpose / pooling kernels against torch, every pad_type included."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_py.runtimes.coreml.ops import KernelError
from tests.unit.mil_helpers import normal_draws, one, t

torch.set_num_threads(1)
rand = normal_draws(101)


def tf_same(size: int, k: int, s: int, lower: bool = False) -> tuple[int, int]:
    """TF 'SAME' pads, written out independently of the kernel under test."""
    out = -(-size // s)
    total = max(0, (out - 1) * s + k - size)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def torch_pad(x: np.ndarray, pads: list[tuple[int, int]], value: float = 0.0) -> torch.Tensor:
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(t(x), flat, value=value)


# ---------------------------------------------------------------- conv

@pytest.mark.parametrize("case", [
    {"shape": (2, 4, 9, 7), "w": (6, 4, 3, 3), "pad_type": "custom", "pad": [1, 1, 1, 1]},
    {"shape": (1, 4, 9, 7), "w": (6, 4, 3, 2), "pad_type": "custom", "pad": [0, 2, 1, 0]},
    {"shape": (1, 3, 9, 7), "w": (5, 3, 3, 3), "pad_type": "valid", "strides": [2, 2]},
    {"shape": (1, 3, 10, 11), "w": (4, 3, 5, 3), "pad_type": "valid", "strides": [3, 2],
     "dilations": [2, 1]},
    {"shape": (1, 4, 9, 8), "w": (8, 1, 3, 3), "pad_type": "custom", "pad": [1, 1, 1, 1],
     "groups": 4},
    {"shape": (1, 6, 8, 8), "w": (4, 3, 3, 3), "pad_type": "custom", "pad": [2, 0, 0, 2],
     "groups": 2, "strides": [2, 1]},
    # depthwise (one filter per channel): strided, dilated, unevenly padded
    {"shape": (2, 5, 9, 8), "w": (5, 1, 3, 3), "pad_type": "custom", "pad": [1, 1, 1, 1],
     "groups": 5},
    {"shape": (1, 4, 11, 9), "w": (4, 1, 5, 3), "pad_type": "custom", "pad": [2, 1, 0, 2],
     "groups": 4, "strides": [2, 3], "dilations": [1, 2]},
    # pointwise (1x1): plain, grouped, and strided / padded (which take the general path)
    {"shape": (2, 6, 5, 7), "w": (4, 6, 1, 1), "pad_type": "valid"},
    {"shape": (1, 6, 5, 7), "w": (9, 2, 1, 1), "pad_type": "valid", "groups": 3},
    {"shape": (1, 6, 5, 7), "w": (4, 6, 1, 1), "pad_type": "custom", "pad": [1, 0, 0, 1],
     "strides": [2, 2]},
])
def test_conv2d_custom_and_valid_match_torch(case):
    x = rand(*case["shape"])
    w = rand(*case["w"])
    b = rand(case["w"][0])
    args = {k: case[k] for k in ("pad_type", "pad", "strides", "dilations", "groups") if k in case}
    got = one("conv", x=x, weight=w, bias=b, **args)
    pad = case.get("pad", [0, 0, 0, 0])
    want = F.conv2d(torch_pad(x, [(pad[0], pad[1]), (pad[2], pad[3])]), t(w), t(b),
                    stride=case.get("strides", 1), dilation=case.get("dilations", 1),
                    groups=case.get("groups", 1)).numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("k,dil", [((3, 3), 1), ((2, 4), 1), ((3, 2), 2), ((1, 1), 1)])
def test_conv_same_stride1_is_torch_padding_same(k, dil):
    x, w = rand(1, 3, 7, 8), rand(4, 3, *k)
    got = one("conv", x=x, weight=w, pad_type="same", dilations=[dil, dil])
    want = F.conv2d(t(x), t(w), padding="same", dilation=dil).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def _rot(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.flip(a, axis=tuple(range(2, a.ndim))))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("k", [(2, 2), (2, 3), (4, 1)])
def test_conv_same_lower_is_rotated_torch_same(k):
    # the coremltools conv tests define same_lower as: rotate input and kernel, torch 'same',
    # rotate back
    x, w = rand(1, 2, 6, 7), rand(3, 2, *k)
    got = one("conv", x=x, weight=w, pad_type="same_lower")
    want = _rot(F.conv2d(t(_rot(x)), t(_rot(w)), padding="same").numpy())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lower", [False, True])
@pytest.mark.parametrize("size,k,s", [(9, 3, 2), (10, 4, 3), (7, 2, 2), (5, 5, 4)])
def test_conv_same_with_strides_on_odd_sizes(size, k, s, lower):
    x, w = rand(1, 2, size, size + 2), rand(3, 2, k, k)
    got = one("conv", x=x, weight=w, strides=[s, s],
              pad_type="same_lower" if lower else "same")
    pads = [tf_same(size, k, s, lower), tf_same(size + 2, k, s, lower)]
    want = F.conv2d(torch_pad(x, pads), t(w), stride=s).numpy()
    assert got.shape[2:] == (math.ceil(size / s), math.ceil((size + 2) / s))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv1d_and_conv3d():
    x1, w1 = rand(2, 3, 11), rand(4, 3, 3)
    got = one("conv", x=x1, weight=w1, pad_type="custom", pad=[2, 1], strides=[2])
    want = F.conv1d(F.pad(t(x1), (2, 1)), t(w1), stride=2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    x3, w3 = rand(1, 2, 5, 6, 7), rand(4, 1, 3, 3, 2)
    got = one("conv", x=x3, weight=w3, pad_type="same", groups=2)
    want = F.conv3d(t(x3), t(w3), padding="same", groups=2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_fp16_stays_fp16_within_fp16_tolerance():
    x, w = rand(1, 8, 12, 12), rand(8, 1, 3, 3)
    x16, w16 = x.astype(np.float16), w.astype(np.float16)
    got = one("conv", x=x16, weight=w16, pad_type="same", groups=8)
    assert got.dtype == np.float16
    want = F.conv2d(t(x16.astype(np.float32)), t(w16.astype(np.float32)), padding=1, groups=8)
    np.testing.assert_allclose(got.astype(np.float32), want.numpy(), rtol=1e-2, atol=1e-2)


def test_conv_refuses_bad_shapes():
    with pytest.raises(KernelError, match="not divisible by groups"):
        one("conv", x=rand(1, 6, 5, 5), weight=rand(4, 3, 3, 3), groups=4)
    with pytest.raises(KernelError, match="bias has 3 values"):
        one("conv", x=rand(1, 3, 5, 5), weight=rand(4, 3, 3, 3), bias=rand(3))
    with pytest.raises(KernelError, match="does not fit"):
        one("conv", x=rand(1, 3, 2, 2), weight=rand(4, 3, 3, 3))


def test_big_conv_is_fast():
    x, w = rand(1, 64, 56, 56), rand(64, 64, 3, 3)
    start = time.perf_counter()
    got = one("conv", x=x, weight=w, pad_type="custom", pad=[1, 1, 1, 1])
    elapsed = time.perf_counter() - start
    assert got.shape == (1, 64, 56, 56)
    assert elapsed < 0.5, f"1x64x56x56 conv took {elapsed:.3f}s"
    np.testing.assert_allclose(got[0, :2, :3, :3], F.conv2d(t(x), t(w), padding=1)[0, :2, :3, :3],
                               rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- conv_transpose

@pytest.mark.parametrize("case", [
    {"x": (2, 4, 5, 6), "w": (4, 3, 3, 3), "strides": [2, 2], "pad": [1, 1, 1, 1]},
    {"x": (1, 4, 5, 5), "w": (4, 2, 3, 2), "strides": [2, 3], "pad": [0, 0, 0, 0], "groups": 2,
     "dilations": [2, 1]},
    {"x": (1, 2, 4, 4), "w": (2, 3, 4, 4), "strides": [2, 2], "pad": [1, 1, 1, 1],
     "output_padding": 1},
    {"x": (1, 3, 4, 5), "w": (3, 2, 3, 3), "strides": [3, 2], "pad": [2, 2, 1, 1],
     "output_padding": (2, 1)},
])
def test_conv_transpose_matches_torch(case):
    x, w = rand(*case["x"]), rand(*case["w"])
    groups = case.get("groups", 1)
    b = rand(case["w"][1] * groups)
    pad = case["pad"]
    want = F.conv_transpose2d(t(x), t(w), t(b), stride=case["strides"], padding=(pad[0], pad[2]),
                              output_padding=case.get("output_padding", 0), groups=groups,
                              dilation=case.get("dilations", 1)).numpy()
    inputs = {"x": x, "weight": w, "bias": b, "strides": case["strides"], "pad_type": "custom",
              "pad": pad, "groups": groups, "dilations": case.get("dilations", [1, 1])}
    if "output_padding" in case:
        inputs["output_shape"] = list(want.shape)
    got = one("conv_transpose", **inputs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_valid_default_and_1d():
    x, w = rand(1, 3, 7), rand(3, 2, 4)
    np.testing.assert_allclose(one("conv_transpose", x=x, weight=w, strides=[3]),
                               F.conv_transpose1d(t(x), t(w), stride=3), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size,k,s", [(4, 3, 2), (5, 4, 2), (3, 2, 3), (6, 5, 1)])
def test_conv_transpose_same_is_the_adjoint_of_conv_same(size, k, s):
    # <conv_same(y), x> == <y, conv_transpose_same(x)>: independent of any crop formula
    c_in, c_out = 3, 2
    x = rand(1, c_in, size, size)
    w = rand(c_in, c_out, k, k)  # conv_transpose weight [C_in, C_out, K]
    up = one("conv_transpose", x=x, weight=w, strides=[s, s], pad_type="same")
    assert up.shape == (1, c_out, size * s, size * s)
    y = rand(*up.shape)
    down = one("conv", x=y, weight=np.ascontiguousarray(w), strides=[s, s], pad_type="same")
    assert down.shape == x.shape
    np.testing.assert_allclose(np.sum(down * x), np.sum(y * up), rtol=1e-4)


# ---------------------------------------------------------------- pooling

def _pool_args(k, s, pad_type="valid", pad=None, ceil=False):
    args = {"kernel_sizes": list(k), "strides": list(s), "pad_type": pad_type, "ceil_mode": ceil}
    if pad is not None:
        args["pad"] = pad
    return args


@pytest.mark.parametrize("k,s,p,ceil", [((3, 3), (2, 2), 1, False), ((3, 3), (2, 2), 0, True),
                                        ((3, 2), (2, 2), 1, True), ((2, 2), (2, 2), 0, True),
                                        ((3, 3), (1, 1), 1, False)])
def test_max_pool_matches_torch_including_ceil_mode(k, s, p, ceil):
    x = rand(2, 3, 7, 9) - 5.0  # all negative: a zero pad would show up at the borders
    got = one("max_pool", x=x, **_pool_args(k, s, "custom", [p] * 4, ceil))
    want = F.max_pool2d(t(x), k, s, padding=p, ceil_mode=ceil).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_max_pool_pads_with_minus_infinity_not_zero():
    x = -np.ones((1, 1, 2, 2), np.float32)
    got = one("max_pool", x=x, kernel_sizes=[2, 2], strides=[1, 1], pad_type="same")
    np.testing.assert_array_equal(got, -np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("k,s,p,ceil", [((3, 3), (2, 2), 1, False), ((3, 3), (2, 2), 1, True),
                                        ((2, 3), (2, 2), 0, True), ((3, 3), (3, 3), 1, True),
                                        ((4, 4), (2, 3), 2, False)])
def test_avg_pool_matches_torch_with_and_without_padding_in_the_average(k, s, p, ceil, exclude):
    x = rand(1, 2, 8, 9)
    got = one("avg_pool", x=x, exclude_padding_from_average=exclude,
              **_pool_args(k, s, "custom", [p] * 4, ceil))
    want = F.avg_pool2d(t(x), k, s, padding=p, ceil_mode=ceil,
                        count_include_pad=not exclude).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pool_hand_examples_from_the_coremltools_op_tests():
    # avg_pool same_lower 2x2 on [[1, 2], [3, 4]]: padding counted in the average
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)
    got = one("avg_pool", x=x, kernel_sizes=[2, 2], pad_type="same_lower")
    np.testing.assert_allclose(got.reshape(-1), [0.25, 0.75, 1.0, 2.5])
    np.testing.assert_array_equal(
        one("max_pool", x=x, kernel_sizes=[2, 2], pad_type="same_lower").reshape(-1), [1, 2, 3, 4])
    # 1-D avg_pool same, kernel 3, stride 3, padding excluded
    x1 = np.arange(1, 8, dtype=np.float32).reshape(1, 1, 7)
    got = one("avg_pool", x=x1, kernel_sizes=[3], strides=[3], pad_type="same",
              exclude_padding_from_average=True)
    np.testing.assert_allclose(got.reshape(-1), [1.5, 4.0, 6.5])
    # 2-D avg_pool same, kernel [2, 3], strides [1, 3], padding excluded
    x2 = np.array([[[[-10.80291205, -6.42076184], [-7.07910997, 9.1913279]],
                    [[-3.18181497, 0.9132147], [11.9785544, 7.92449539]]]], np.float32)
    got = one("avg_pool", x=x2, kernel_sizes=[2, 3], strides=[1, 3], pad_type="same",
              exclude_padding_from_average=True)
    np.testing.assert_allclose(got.reshape(-1), [-3.7778642, 1.056109, 4.4086123, 9.951525],
                               rtol=1e-6)


def _brute_avg(x: np.ndarray, k: int, s: int, pads: tuple[int, int], exclude: bool) -> np.ndarray:
    n = x.shape[-1]
    out = -(-n // s)
    res = np.zeros(x.shape[:-1] + (out,), np.float32)
    for o in range(out):
        lo, hi = o * s - pads[0], o * s - pads[0] + k
        vals = x[..., max(lo, 0):min(hi, n)]
        res[..., o] = vals.sum(-1) / (vals.shape[-1] if exclude else k)
    return res


@pytest.mark.parametrize("pad_type", ["same", "same_lower"])
@pytest.mark.parametrize("exclude", [False, True])
def test_avg_pool_1d_same_and_same_lower_against_brute_force(pad_type, exclude):
    x = rand(1, 2, 10)
    got = one("avg_pool", x=x, kernel_sizes=[4], strides=[3], pad_type=pad_type,
              exclude_padding_from_average=exclude)
    want = _brute_avg(x, 4, 3, tf_same(10, 4, 3, pad_type == "same_lower"), exclude)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_l2_pool_and_3d_pools():
    x = np.abs(rand(1, 2, 6, 7))
    got = one("l2_pool", x=x, kernel_sizes=[2, 3], strides=[2, 2], pad_type="valid")
    np.testing.assert_allclose(got, F.lp_pool2d(t(x), 2, (2, 3), (2, 2)), rtol=1e-5)
    x3 = rand(1, 2, 5, 6, 7)
    np.testing.assert_array_equal(
        one("max_pool", x=x3, kernel_sizes=[2, 2, 3], strides=[2, 2, 2], pad_type="valid"),
        F.max_pool3d(t(x3), (2, 2, 3), 2))
    np.testing.assert_allclose(
        one("avg_pool", x=x3, kernel_sizes=[3, 3, 3], strides=[1, 2, 2], pad_type="custom",
            pad=[1] * 6),
        F.avg_pool3d(t(x3), 3, (1, 2, 2), padding=1), rtol=1e-5, atol=1e-6)


def test_pool_fp16_and_refusals():
    x = rand(1, 3, 9, 9)
    x16 = x.astype(np.float16)
    for op, fn in [("avg_pool", F.avg_pool2d), ("max_pool", F.max_pool2d)]:
        got = one(op, x=x16, **_pool_args((3, 3), (2, 2), "custom", [1] * 4, True))
        assert got.dtype == np.float16
        want = fn(t(x16.astype(np.float32)), 3, 2, padding=1, ceil_mode=True)
        np.testing.assert_allclose(got.astype(np.float32), want.numpy(), rtol=2e-3, atol=2e-3)
    with pytest.raises(KernelError, match="symmetric"):
        one("max_pool", x=x, **_pool_args((3, 3), (2, 2), "custom", [1, 0, 1, 1], True))
    with pytest.raises(KernelError, match="pad_type is 'same'"):
        one("avg_pool", x=x, **_pool_args((3, 3), (2, 2), "same", None, True))
