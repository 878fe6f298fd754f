"""MIL op kernels: registry contract, errors, elementwise ops and activations against torch."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_py.errors import PocketError
from runtime_py.runtimes.coreml.ops import KERNELS, KernelError, coverage, kernel

torch.set_num_threads(1)
RNG = np.random.default_rng(0)


def run(op: str, attrs: dict | None = None, **inputs) -> list[np.ndarray]:
    return KERNELS[op](inputs, attrs or {})


def one(op: str, **inputs) -> np.ndarray:
    out = run(op, **inputs)
    assert isinstance(out, list) and len(out) == 1
    return out[0]


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


# ---------------------------------------------------------------- registry and errors

def test_coverage_is_sorted_unique_and_matches_the_registry():
    ops = coverage()
    assert ops == sorted(ops) and len(ops) == len(set(ops)) == len(KERNELS)
    for must in ("conv", "conv_transpose", "sigmoid_hard", "thresholded_relu", "reduce_mean",
                 "upsample_bilinear", "constexpr_affine_dequantize", "constexpr_lut_to_dense",
                 "constexpr_sparse_to_dense", "constexpr_blockwise_shift_scale", "pad",
                 "avg_pool", "max_pool", "matmul", "cast", "ceil", "clip", "slice_by_index"):
        assert must in ops


def test_kernels_import_neither_torch_nor_coremltools():
    code = ("import sys, runtime_py.runtimes.coreml.ops; "
            "bad = [m for m in ('torch', 'coremltools', 'scipy') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kernel_decorator_refuses_a_second_registration():
    with pytest.raises(ValueError, match="registered twice"):
        kernel("conv")(lambda inputs, attrs: [])


@pytest.mark.parametrize("op", coverage())
def test_every_kernel_refuses_missing_inputs_with_one_line_error(op):
    with pytest.raises(KernelError) as info:
        KERNELS[op]({}, {})
    msg = str(info.value)
    assert isinstance(info.value, PocketError)
    assert "\n" not in msg and msg.startswith(f"MIL op '{op}':") and info.value.op == op


_X = np.ones((1, 2, 4, 4), np.float32)
_UNARY_BAD = {"x": "not a tensor"}
INVALID = {
    "conv": {"x": _X, "weight": np.ones((3, 3, 3, 3), np.float32)},
    "conv_transpose": {"x": _X, "weight": np.ones((3, 1, 2, 2), np.float32)},
    "avg_pool": {"x": _X, "kernel_sizes": [5, 5], "pad_type": "valid"},
    "max_pool": {"x": _X, "kernel_sizes": [2, 2], "pad_type": "bogus"},
    "l2_pool": {"x": _X, "kernel_sizes": [2]},
    "matmul": {"x": np.ones((2, 3)), "y": np.ones((4, 2))},
    "linear": {"x": np.ones((2, 3)), "weight": np.ones((4, 5))},
    "einsum": {"values": [np.ones((2, 3)), np.ones((4, 2))], "equation": "ij,jk->ik"},
    "reshape": {"x": _X, "shape": [3, 5]},
    "transpose": {"x": _X, "perm": [0, 1, 1, 2]},
    "concat": {"values": [np.ones((2, 3)), np.ones((3, 4))], "axis": 0},
    "split": {"x": np.ones((5, 2)), "axis": 0, "num_splits": 2},
    "gather": {"x": np.ones((3, 2)), "indices": np.array([3])},
    "pad": {"x": np.ones((2, 2)), "pad": [3, 3], "mode": "reflect"},
    "upsample_bilinear": {"x": _X, "align_corners": True, "half_pixel_centers": True},
    "constexpr_lut_to_dense": {"attrs": {"indices": np.zeros(3, np.uint8),
                                         "lut": np.arange(4.0, dtype=np.float32),
                                         "shape": np.array([4], np.uint32)}},
    "constexpr_sparse_to_dense": {"attrs": {"nonzero_data": np.ones(2, np.float32),
                                            "mask": np.array([7], np.uint8),
                                            "shape": np.array([3], np.uint32)}},
    "batch_norm": {"x": _X, "mean": np.zeros(3), "variance": np.ones(3)},
    "softmax": {"x": _X, "axis": 4},
    "slice_by_index": {"x": _X, "begin": [0], "end": [1]},
    "topk": {"x": np.ones((2, 3)), "k": 4},
}


@pytest.mark.parametrize("op", sorted(INVALID))
def test_clearly_invalid_inputs_raise_kernel_errors_not_numpy_tracebacks(op):
    case = dict(INVALID[op])
    attrs = case.pop("attrs", {})
    with pytest.raises(KernelError) as info:
        KERNELS[op](case, attrs)
    assert "\n" not in str(info.value) and f"'{op}'" in str(info.value)


def test_conv_channel_mismatch_message_says_what_is_wrong():
    with pytest.raises(KernelError, match="2 channels but weight expects 3"):
        run("conv", x=_X, weight=np.ones((3, 3, 3, 3), np.float32))


# ---------------------------------------------------------------- elementwise binary

_BINARY_TORCH = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "real_div": torch.div,
    "floor_div": torch.floor_divide, "mod": torch.remainder, "maximum": torch.maximum,
    "minimum": torch.minimum, "equal": torch.eq, "not_equal": torch.ne, "less": torch.lt,
    "less_equal": torch.le, "greater": torch.gt, "greater_equal": torch.ge,
}


@pytest.mark.parametrize("op", sorted(_BINARY_TORCH))
def test_binary_ops_broadcast_rank_mismatched_operands_like_torch(op):
    x = RNG.normal(size=(2, 1, 4, 5)).astype(np.float32) * 3
    y = RNG.normal(size=(3, 1, 5)).astype(np.float32) * 3 + 0.5
    y[0, 0, :2] = x[0, 0, 0, :2]  # some equal pairs for the comparisons
    got = one(op, x=x, y=y)
    want = _BINARY_TORCH[op](t(x), t(y)).numpy()
    assert got.shape == (2, 3, 4, 5) and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_pow_and_integer_ops_keep_int32():
    x = np.array([1.5, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(one("pow", x=x, y=np.float32(2.5)), x ** 2.5, rtol=1e-6)
    a, b = np.array([7, -7, 9], np.int32), np.array([2, 2, -4], np.int32)
    assert one("add", x=a, y=b).dtype == np.int32
    np.testing.assert_array_equal(one("floor_div", x=a, y=b), torch.floor_divide(t(a), t(b)))
    np.testing.assert_array_equal(one("mod", x=a, y=b), torch.remainder(t(a), t(b)))
    assert one("real_div", x=a, y=b).tolist() == [3, -3, -2]  # int32 / int32 -> int32
    e = one("exp2", x=np.array([0, 3, 10], np.int32))
    assert e.dtype == np.int32 and e.tolist() == [1, 8, 1024]


def test_python_scalars_take_the_tensor_dtype():
    x = np.ones((2, 2), np.float16)
    assert one("mul", x=x, y=0.5).dtype == np.float16
    assert one("add", x=3, y=np.ones(2, np.int32)).dtype == np.int32
    assert one("sub", x=1.0, y=2.0).dtype == np.float32


@pytest.mark.parametrize("op,fn", [("logical_and", torch.logical_and),
                                   ("logical_or", torch.logical_or),
                                   ("logical_xor", torch.logical_xor)])
def test_logical_ops(op, fn):
    a = RNG.random((3, 4)) > 0.5
    b = RNG.random((4,)) > 0.5
    np.testing.assert_array_equal(one(op, x=a, y=b), fn(t(a), t(b)).numpy())
    np.testing.assert_array_equal(one("logical_not", x=a), ~a)


# ---------------------------------------------------------------- elementwise unary

_POS = RNG.uniform(0.05, 4.0, size=(3, 7)).astype(np.float32)
_ANY = RNG.normal(size=(3, 7)).astype(np.float32) * 2
_UNIT = RNG.uniform(-0.95, 0.95, size=(3, 7)).astype(np.float32)
_UNARY = [
    ("abs", _ANY, torch.abs), ("sqrt", _POS, torch.sqrt), ("exp", _ANY, torch.exp),
    ("exp2", _ANY, torch.exp2), ("square", _ANY, torch.square), ("sign", _ANY, torch.sign),
    ("ceil", _ANY, torch.ceil), ("floor", _ANY, torch.floor), ("sin", _ANY, torch.sin),
    ("cos", _ANY, torch.cos), ("tan", _UNIT, torch.tan), ("tanh", _ANY, torch.tanh),
    ("atan", _ANY, torch.atan), ("asin", _UNIT, torch.asin), ("acos", _UNIT, torch.acos),
    ("atanh", _UNIT, torch.atanh), ("sinh", _ANY, torch.sinh), ("cosh", _ANY, torch.cosh),
    ("erf", np.concatenate([_ANY, _UNIT * 1e-3, _ANY * 3], axis=1), torch.erf),
]


@pytest.mark.parametrize("op,x,fn", _UNARY, ids=[u[0] for u in _UNARY])
def test_unary_ops_match_torch(op, x, fn):
    got = one(op, x=x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, fn(t(x)).numpy(), rtol=2e-6, atol=1e-7)


def test_round_is_half_to_even_like_torch_and_numpy():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6], np.float32)
    np.testing.assert_array_equal(one("round", x=x), torch.round(t(x)).numpy())


def test_epsilon_ops_use_the_mil_defaults_and_given_epsilons():
    x = _POS
    np.testing.assert_allclose(one("rsqrt", x=x), torch.rsqrt(t(x) + 1e-12), rtol=1e-6)
    np.testing.assert_allclose(one("inverse", x=x), 1 / (t(x) + 1e-4), rtol=1e-6)
    np.testing.assert_allclose(one("inverse", x=x, epsilon=0.5), 1 / (x + 0.5), rtol=1e-6)
    np.testing.assert_allclose(one("log", x=x), torch.log(t(x)), rtol=1e-6)
    assert np.isfinite(one("log", x=np.zeros(2, np.float32))).all()  # + 1e-45 (a denormal)
    np.testing.assert_allclose(one("log", x=x, epsilon=1.0), np.log1p(x), rtol=1e-6)


def test_unary_fp16_stays_fp16_within_fp16_tolerance():
    x = _ANY.astype(np.float16)
    for op, fn in [("exp", torch.exp), ("tanh", torch.tanh), ("erf", torch.erf),
                   ("sqrt", lambda v: torch.sqrt(v.abs()))]:
        arg = np.abs(x) if op == "sqrt" else x
        got = one(op, x=arg)
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float32), fn(t(x.astype(np.float32))).numpy(),
                                   rtol=2e-3, atol=2e-3)


def test_clip_threshold_select_and_cast():
    x = _ANY
    np.testing.assert_array_equal(one("clip", x=x, alpha=-1.0, beta=0.5),
                                  torch.clamp(t(x), -1.0, 0.5).numpy())
    np.testing.assert_array_equal(one("threshold", x=x, alpha=0.2), np.maximum(x, 0.2))
    cond = RNG.random((3, 1)) > 0.5
    np.testing.assert_array_equal(one("select", cond=cond, a=x, b=np.float32(-9)),
                                  torch.where(t(cond), t(x), -9.0).numpy())
    got = one("cast", x=np.array([-2.7, -0.5, 0.5, 2.7, 0.0], np.float32), dtype="int32")
    assert got.dtype == np.int32 and got.tolist() == [-2, 0, 0, 2, 0]  # toward zero
    assert one("cast", x=np.array([0.0, 2.0], np.float32), dtype="bool").tolist() == [False, True]
    assert one("cast", x=np.array([1, 255], np.int32), dtype="uint8").dtype == np.uint8
    assert one("cast", x=x, dtype="fp16").dtype == np.float16
    with pytest.raises(KernelError, match="unknown dtype"):
        run("cast", x=x, dtype="float32")


# ---------------------------------------------------------------- activations

_ACT = [
    ("relu", {}, F.relu), ("relu6", {}, F.relu6), ("sigmoid", {}, torch.sigmoid),
    ("silu", {}, F.silu), ("softplus", {}, F.softplus), ("softsign", {}, F.softsign),
    ("tanh", {}, torch.tanh),
    ("sigmoid_hard", {"alpha": 1 / 6, "beta": 0.5}, F.hardsigmoid),
    ("leaky_relu", {"alpha": 0.1}, lambda v: F.leaky_relu(v, 0.1)),
    ("elu", {"alpha": 0.7}, lambda v: F.elu(v, 0.7)),
    ("thresholded_relu", {"alpha": 0.3}, lambda v: F.threshold(v, 0.3, 0.0)),
    ("scaled_tanh", {"alpha": 1.7, "beta": 0.6}, lambda v: 1.7 * torch.tanh(0.6 * v)),
    ("linear_activation", {"alpha": 2.0, "beta": -1.0}, lambda v: 2 * v - 1),
    ("clamped_relu", {"alpha": 0.1, "beta": 2.0},
     lambda v: torch.clamp(F.leaky_relu(v, 0.1), max=2.0)),
]


@pytest.mark.parametrize("op,params,fn", _ACT, ids=[a[0] for a in _ACT])
def test_activations_match_torch(op, params, fn):
    x = RNG.normal(size=(2, 3, 5, 5)).astype(np.float32) * 4
    x[0, 0, 0, :3] = [30.0, -30.0, 0.0]
    got = one(op, x=x, **params)
    np.testing.assert_allclose(got, fn(t(x)).numpy(), rtol=1e-5, atol=1e-6)
    half = one(op, x=x.astype(np.float16), **params)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), fn(t(x.astype(np.float16).astype(
        np.float32))).numpy(), rtol=2e-3, atol=2e-3)


def test_thresholded_relu_keeps_x_equal_to_alpha():
    x = np.array([-3.0, -2.0, 0.3, 0.29], np.float32)
    np.testing.assert_array_equal(one("thresholded_relu", x=x, alpha=np.float32(0.3)),
                                  np.array([0, 0, 0.3, 0], np.float32))


def test_hardswish_lowering_thresholded_relu_sigmoid_hard_mul_is_torch_hardswish():
    x = np.linspace(-6, 6, 97, dtype=np.float32)
    w = one("thresholded_relu", x=x, alpha=-3.0)
    y = one("sigmoid_hard", x=w, alpha=1.0 / 6, beta=0.5)
    np.testing.assert_allclose(one("mul", x=w, y=y), F.hardswish(t(x)).numpy(), atol=1e-6)


@pytest.mark.parametrize("mode,approx", [(None, "none"), ("EXACT", "none"),
                                         ("TANH_APPROXIMATION", "tanh")])
def test_gelu_modes_match_torch(mode, approx):
    x = np.concatenate([RNG.normal(size=200) * 3, [-8.0, -5.0, 0.0, 1e-4, 5.0]]).astype(
        np.float32)
    params = {} if mode is None else {"mode": mode}
    got = one("gelu", x=x, **params)
    np.testing.assert_allclose(got, F.gelu(t(x), approximate=approx).numpy(), rtol=1e-5,
                               atol=1e-6)
    half = one("gelu", x=x.astype(np.float16), **params)
    np.testing.assert_allclose(half.astype(np.float32), F.gelu(t(x), approximate=approx),
                               rtol=3e-3, atol=3e-3)


def test_gelu_sigmoid_approximation_and_unknown_mode():
    x = np.linspace(-4, 4, 33, dtype=np.float32)
    np.testing.assert_allclose(one("gelu", x=x, mode="SIGMOID_APPROXIMATION"),
                               t(x) * torch.sigmoid(1.702 * t(x)), rtol=1e-6, atol=1e-7)
    with pytest.raises(KernelError, match="unknown gelu mode"):
        run("gelu", x=x, mode="FAST")


def test_prelu_alpha_per_channel_and_softplus_parametric():
    x = RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)
    alpha = np.array([0.1, 0.5, 2.0], np.float32)
    np.testing.assert_allclose(one("prelu", x=x, alpha=alpha), F.prelu(t(x), t(alpha)),
                               rtol=1e-6)
    beta = np.array([1.0, 2.0, 0.5], np.float32)
    want = t(alpha)[None, :, None, None] * F.softplus(t(x) * t(beta)[None, :, None, None])
    np.testing.assert_allclose(one("softplus_parametric", x=x, alpha=alpha, beta=beta), want,
                               rtol=1e-5)
    with pytest.raises(KernelError, match="4 values for 3 channels"):
        run("prelu", x=x, alpha=np.ones(4, np.float32))


@pytest.mark.parametrize("axis", [-1, 1, 0, -3])
def test_softmax_axes_including_negative(axis):
    x = RNG.normal(size=(2, 3, 5)).astype(np.float32) * 5
    np.testing.assert_allclose(one("softmax", x=x, axis=axis), F.softmax(t(x), dim=axis),
                               rtol=1e-5, atol=1e-7)
    assert np.allclose(one("softmax", x=x), F.softmax(t(x), dim=-1), atol=1e-7)  # default -1
    half = one("softmax", x=x.astype(np.float16), axis=axis)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), F.softmax(t(x), dim=axis), atol=2e-3)
