"""MIL reductions, normalizations and linear algebra kernels against torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_py.runtimes.coreml.ops import KernelError
from tests.unit.mil_helpers import normal_draws, one, t

torch.set_num_threads(1)
rand = normal_draws(104)


X = rand(2, 3, 4, 5)


def _amax(v, dim, keepdim):
    return torch.amax(v, dim=dim, keepdim=keepdim)


def _amin(v, dim, keepdim):
    return torch.amin(v, dim=dim, keepdim=keepdim)


def _prod(v, dim, keepdim):
    for d in sorted(dim, reverse=True):
        v = torch.prod(v, dim=d, keepdim=keepdim)
    return v


_REDUCE = {
    "reduce_mean": torch.mean, "reduce_sum": torch.sum, "reduce_max": _amax,
    "reduce_min": _amin, "reduce_prod": _prod, "reduce_log_sum_exp": torch.logsumexp,
    "reduce_l2_norm": lambda v, dim, keepdim: torch.linalg.vector_norm(v, 2, dim, keepdim),
    "reduce_l1_norm": lambda v, dim, keepdim: torch.linalg.vector_norm(v, 1, dim, keepdim),
    "reduce_sum_square": lambda v, dim, keepdim: torch.sum(v * v, dim=dim, keepdim=keepdim),
}


@pytest.mark.parametrize("op", sorted(_REDUCE))
@pytest.mark.parametrize("axes,keep", [([2, 3], True), ([-1], False), ([0, -3], False),
                                       (None, False), (None, True)])
def test_reductions_match_torch(op, axes, keep):
    args = {} if axes is None else {"axes": axes}
    got = one(op, x=X, keep_dims=keep, **args)
    dims = list(range(4)) if axes is None else [a % 4 for a in axes]
    want = _REDUCE[op](t(X), dims, keep).numpy()
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reduce_mean_is_adaptive_avg_pool_and_keep_dims_defaults_false():
    got = one("reduce_mean", x=X, axes=[-2, -1], keep_dims=True)
    np.testing.assert_allclose(got, F.adaptive_avg_pool2d(t(X), 1).numpy(), rtol=1e-5, atol=1e-7)
    assert one("reduce_mean", x=X, axes=[-2, -1]).shape == (2, 3)


def test_reductions_in_fp16_and_int32():
    got = one("reduce_sum", x=X.astype(np.float16), axes=[1, 2, 3])
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), X.astype(np.float16).astype(
        np.float32).sum((1, 2, 3)), rtol=2e-3, atol=2e-2)
    ints = np.arange(12, dtype=np.int32).reshape(3, 4)
    s = one("reduce_sum", x=ints, axes=[1])
    assert s.dtype == np.int32 and s.tolist() == [6, 22, 38]


@pytest.mark.parametrize("op,fn", [("reduce_argmax", torch.argmax),
                                   ("reduce_argmin", torch.argmin)])
@pytest.mark.parametrize("axis,keep", [(-1, False), (1, True), (0, False)])
def test_arg_reductions_match_torch(op, fn, axis, keep):
    got = one(op, x=X, axis=axis, keep_dims=keep)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, fn(t(X), dim=axis, keepdim=keep).numpy())
    assert one(op, x=X).shape == (2, 3, 4)  # axis defaults to -1


# ---------------------------------------------------------------- normalization

def test_batch_norm_matches_torch_eval_with_optional_gamma_beta():
    mean, var = rand(3), np.abs(rand(3)) + 0.1
    gamma, beta = rand(3), rand(3)
    got = one("batch_norm", x=X, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=1e-3)
    want = F.batch_norm(t(X), t(mean), t(var), t(gamma), t(beta), False, eps=1e-3)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
    plain = one("batch_norm", x=X, mean=mean, variance=var)
    np.testing.assert_allclose(plain, F.batch_norm(t(X), t(mean), t(var), eps=1e-5).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_instance_norm_matches_torch():
    gamma, beta = rand(3), rand(3)
    got = one("instance_norm", x=X, gamma=gamma, beta=beta)
    want = F.instance_norm(t(X), weight=t(gamma), bias=t(beta), eps=1e-5)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_layer_norm_trailing_axes_gamma_beta_optional_and_fp16():
    gamma, beta = rand(4, 5), rand(4, 5)
    got = one("layer_norm", x=X, axes=[-2, -1], gamma=gamma, beta=beta, epsilon=1e-5)
    want = F.layer_norm(t(X), (4, 5), t(gamma), t(beta), eps=1e-5)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    bare = one("layer_norm", x=X, axes=[3])
    np.testing.assert_allclose(bare, F.layer_norm(t(X), (5,)).numpy(), rtol=1e-4, atol=1e-5)
    all_axes = one("layer_norm", x=X)
    np.testing.assert_allclose(all_axes, F.layer_norm(t(X), X.shape).numpy(), rtol=1e-4,
                               atol=1e-5)
    half = one("layer_norm", x=X.astype(np.float16), axes=[-1])
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), F.layer_norm(t(X), (5,)), atol=1e-2)


def test_layer_norm_over_a_channel_axis():
    gamma = rand(3)
    got = one("layer_norm", x=X, axes=[1], gamma=gamma)
    moved = F.layer_norm(t(X).movedim(1, -1), (3,), t(gamma)).movedim(-1, 1)
    np.testing.assert_allclose(got, moved.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(KernelError, match="normalized shape"):
        one("layer_norm", x=X, axes=[1], gamma=rand(4))


def test_l2_norm_over_the_last_three_dims():
    got = one("l2_norm", x=X, epsilon=1e-6)
    flat = X.reshape(2, -1)
    want = (flat / np.sqrt((flat ** 2).sum(1, keepdims=True) + 1e-6)).reshape(X.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_local_response_norm_matches_torch(size):
    got = one("local_response_norm", x=X, size=size, alpha=0.01, beta=0.75, k=2.0)
    want = F.local_response_norm(t(X), size, alpha=0.01, beta=0.75, k=2.0)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_local_response_norm_coremltools_example():
    # rank 3 is [C, H, W]: the channel axis (-3) has size 1, so only x_c^2 is summed
    x = np.array([[[1.0, -7.0], [5.0, -6.0], [-3.0, -5.0]]], np.float32)
    got = one("local_response_norm", x=x, size=2)
    want = [[[0.99996257, -6.98716545], [4.99531746, -5.99191284], [-2.99898791, -4.99531746]]]
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ---------------------------------------------------------------- linear algebra

def test_linear_with_and_without_bias():
    x, w, b = rand(2, 7, 6), rand(4, 6), rand(4)
    np.testing.assert_allclose(one("linear", x=x, weight=w, bias=b), F.linear(t(x), t(w), t(b)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one("linear", x=x[0, 0], weight=w), F.linear(t(x[0, 0]), t(w)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xs,ys,tx,ty", [((10, 4, 3), (5, 10, 3, 2), False, False),
                                         ((2, 3, 4), (2, 5, 4), False, True),
                                         ((3, 4), (1, 3, 5), True, False),
                                         ((4,), (10, 4, 3), False, False),
                                         ((10, 3, 4), (4,), False, False),
                                         ((2, 1, 5, 3), (4, 2, 5), True, True)])
def test_matmul_transposes_and_broadcasts_batches(xs, ys, tx, ty):
    x, y = rand(*xs), rand(*ys)
    got = one("matmul", x=x, y=y, transpose_x=tx, transpose_y=ty)
    a = t(x).transpose(-1, -2) if tx and x.ndim >= 2 else t(x)
    b = t(y).transpose(-1, -2) if ty and y.ndim >= 2 else t(y)
    want = torch.matmul(a, b).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_matmul_fp16_and_int32():
    x, y = rand(3, 8, 16), rand(16, 4)
    got = one("matmul", x=x.astype(np.float16), y=y.astype(np.float16))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), x @ y, rtol=1e-2, atol=2e-2)
    ints = one("matmul", x=np.ones((2, 3), np.int32), y=np.ones((3, 2), np.int32))
    assert ints.dtype == np.int32 and ints.tolist() == [[3, 3], [3, 3]]


def test_einsum_mil_form():
    a, b = rand(2, 3, 4, 5), rand(2, 5, 4, 6)
    got = one("einsum", values=[a, b], equation="nchw,nwhu->nchu")
    np.testing.assert_allclose(got, torch.einsum("nchw,nwhu->nchu", t(a), t(b)), rtol=1e-5,
                               atol=1e-5)
