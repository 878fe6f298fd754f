"""MIL shape, indexing and layout kernels against torch / numpy and the definitions' examples."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from runtime_py.runtimes.coreml.ops import KERNELS, KernelError
from tests.unit.mil_helpers import normal_draws, one, t

torch.set_num_threads(1)
RNG = np.random.default_rng(3)
rand = normal_draws(103)


def run(op: str, **inputs) -> list[np.ndarray]:
    return KERNELS[op](inputs, {})


X = rand(2, 3, 4, 5)


def test_reshape_zero_copies_a_dim_and_minus_one_infers():
    assert one("reshape", x=X, shape=[0, -1, 1, 5]).shape == (2, 12, 1, 5)
    with pytest.raises(KernelError):  # 0 only copies a dim when len(shape) == rank(x)
        one("reshape", x=X, shape=[0, -1, 5])
    assert one("reshape", x=X, shape=[0, 0, -1, 1]).shape == (2, 3, 20, 1)
    assert one("reshape", x=X, shape=np.array([6, 20], np.int32)).shape == (6, 20)
    with pytest.raises(KernelError):
        one("reshape", x=X, shape=[-1, -1])


def test_transpose_squeeze_expand_dims():
    np.testing.assert_array_equal(one("transpose", x=X, perm=[0, 2, 3, 1]),
                                  t(X).permute(0, 2, 3, 1).numpy())
    y = X.reshape(2, 1, 3, 1, 20)
    assert one("squeeze", x=y).shape == (2, 3, 20)
    assert one("squeeze", x=y, axes=[-2]).shape == (2, 1, 3, 20)
    with pytest.raises(KernelError, match="size != 1"):
        one("squeeze", x=y, axes=[0])
    assert one("expand_dims", x=X, axes=[-1]).shape == (2, 3, 4, 5, 1)
    assert one("expand_dims", x=X, axes=[0, -2]).shape == (1, 2, 3, 4, 1, 5)
    assert one("expand_dims", x=np.float32(3.0), axes=[0]).shape == (1,)


def test_concat_negative_axis_and_interleave_example():
    a, b = rand(2, 3, 4), rand(2, 5, 4)
    np.testing.assert_array_equal(one("concat", values=[a, b], axis=-2),
                                  torch.cat([t(a), t(b)], dim=-2).numpy())
    in1 = np.array([[1, 2], [3, 4], [5, 6]], np.int32)
    in2 = np.array([[7, 8], [9, 10], [11, 12]], np.int32)
    got = one("concat", values=[in1, in2], axis=0, interleave=True)
    assert got.tolist() == [[1, 2], [7, 8], [3, 4], [9, 10], [5, 6], [11, 12]]


def test_split_stack_tile():
    parts = run("split", x=X, axis=-1, split_sizes=[1, 3, 1])
    assert [p.shape[-1] for p in parts] == [1, 3, 1]
    np.testing.assert_array_equal(np.concatenate(parts, -1), X)
    halves = run("split", x=X, axis=0, num_splits=2)
    assert len(halves) == 2 and halves[1].shape == (1, 3, 4, 5)
    np.testing.assert_array_equal(one("stack", values=[X, X + 1], axis=-1),
                                  torch.stack([t(X), t(X + 1)], dim=-1).numpy())
    np.testing.assert_array_equal(one("tile", x=X, reps=[1, 2, 1, 3]), t(X).repeat(1, 2, 1, 3))


@pytest.mark.parametrize("mode,tmode", [("constant", "constant"), ("reflect", "reflect"),
                                        ("replicate", "replicate")])
def test_pad_pads_the_last_dims_begin_end_per_dim(mode, tmode):
    # MIL pad [h_begin, h_end, w_begin, w_end]; torch F.pad takes (w_left, w_right, h_top, ...)
    got = one("pad", x=X, pad=[1, 2, 3, 0], mode=mode)
    want = F.pad(t(X), (3, 0, 1, 2), mode=tmode).numpy()
    assert got.shape == (2, 3, 7, 8)
    np.testing.assert_array_equal(got, want)


def test_pad_constant_value_and_single_dim():
    got = one("pad", x=X, pad=[2, 1], constant_val=-7.0)
    np.testing.assert_array_equal(got, F.pad(t(X), (2, 1), value=-7.0).numpy())
    assert got.dtype == np.float32
    with pytest.raises(KernelError, match="too large"):
        one("pad", x=X, pad=[5, 0], mode="reflect")


def test_identity_shape_fill_range_flatten_reverse():
    assert one("identity", x=X) is X or np.array_equal(one("identity", x=X), X)
    s = one("shape", x=X)
    assert s.dtype == np.int32 and s.tolist() == [2, 3, 4, 5]
    f = one("fill", shape=[2, 3], value=np.float16(1.5))
    assert f.dtype == np.float16 and f.shape == (2, 3) and (f == 1.5).all()
    assert one("fill", shape=np.array([4], np.int32)).tolist() == [0.0] * 4
    assert one("fill_like", ref_tensor=X, value=2).shape == X.shape
    np.testing.assert_allclose(one("range_1d", start=0.5, end=3.0, step=0.75),
                               torch.arange(0.5, 3.0, 0.75).numpy())
    ints = one("range_1d", start=np.int32(10), end=np.int32(0), step=np.int32(-3))
    assert ints.dtype == np.int32 and ints.tolist() == [10, 7, 4, 1]
    # the iOS15 flatten2d examples
    for shape, axis, want in [((3,), -1, (1, 3)), ((3,), 1, (3, 1)), ((4, 3), -1, (4, 3)),
                              ((2, 3, 2), -1, (6, 2)), ((5, 5, 2), 1, (5, 10))]:
        assert one("flatten2d", x=np.zeros(shape), axis=axis).shape == want
    assert one("flatten2d", x=X).shape == (2, 60)
    np.testing.assert_array_equal(one("reverse", x=X, axes=[1, -1]), t(X).flip(1, -1).numpy())
    np.testing.assert_array_equal(one("reverse", x=X), np.flip(X))


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("backward", [False, True])
def test_cumsum_exclusive_and_reverse(exclusive, backward):
    x = rand(3, 4)
    got = one("cumsum", x=x, axis=1, exclusive=exclusive, reverse=backward)
    data = t(x).flip(1) if backward else t(x)
    want = torch.cumsum(data, 1)
    if exclusive:
        want = torch.cat([torch.zeros(3, 1), want[:, :-1]], 1)
    want = want.flip(1) if backward else want
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- indexing

def test_slice_by_index_masks_strides_and_squeeze():
    got = one("slice_by_index", x=X, begin=[1, 0, 3, 0], end=[2, 2, 0, 5], stride=[1, 1, -1, 2])
    np.testing.assert_array_equal(got, X[1:2, 0:2, 3:0:-1, 0:5:2])
    got = one("slice_by_index", x=X, begin=[0, 1, -1, 9], end=[0, 3, 0, 1],
              begin_mask=[True, False, False, False], end_mask=[True, False, False, True],
              squeeze_mask=[False, False, True, False], stride=[1, 1, 1, -1])
    np.testing.assert_array_equal(got, X[:, 1:3, -1, 9::-1])
    assert got.shape == (2, 2, 5)
    with pytest.raises(KernelError, match="out of range"):
        one("slice_by_index", x=X, begin=[0, 0, 7, 0], end=[1, 1, 1, 1],
            squeeze_mask=[False, False, True, False])


def test_slice_by_size():
    got = one("slice_by_size", x=X, begin=[1, -2, 0, 1], size=[1, -1, 2, 3])
    np.testing.assert_array_equal(got, X[1:2, 1:, 0:2, 1:4])
    with pytest.raises(KernelError, match="out of range"):
        one("slice_by_size", x=X, begin=[0, 0, 3, 0], size=[1, 1, 2, 1])


def test_gather_axis_negative_indices_and_batch_dims():
    idx = np.array([[0, -1], [2, 1]], np.int32)
    np.testing.assert_array_equal(one("gather", x=X, indices=idx, axis=2),
                                  np.take(X, [[0, 3], [2, 1]], axis=2))
    assert one("gather", x=X, indices=np.int32(1), axis=-1).shape == (2, 3, 4)
    bidx = RNG.integers(0, 4, size=(2, 3, 6)).astype(np.int32)
    got = one("gather", x=X, indices=bidx, axis=2, batch_dims=2)
    want = np.stack([np.stack([np.take(X[i, j], bidx[i, j], axis=0) for j in range(3)])
                     for i in range(2)])
    assert got.shape == (2, 3, 6, 5)
    np.testing.assert_array_equal(got, want)


def test_gather_along_axis_and_gather_nd():
    idx = RNG.integers(0, 4, size=(2, 3, 6, 5))
    np.testing.assert_array_equal(one("gather_along_axis", x=X, indices=idx, axis=2),
                                  torch.gather(t(X), 2, t(idx)).numpy())
    nd = np.array([[0, 2, 3], [1, 0, 1]], np.int32)
    np.testing.assert_array_equal(one("gather_nd", x=X, indices=nd), X[[0, 1], [2, 0], [3, 1]])
    with pytest.raises(KernelError, match="out of range"):
        one("gather_along_axis", x=X, indices=idx + 4, axis=2)


@pytest.mark.parametrize("ascending", [False, True])
@pytest.mark.parametrize("axis", [-1, 1])
def test_topk_and_argsort_match_torch(ascending, axis):
    x = rand(3, 6, 4)
    values, indices = run("topk", x=x, k=3, axis=axis, ascending=ascending)
    tv, ti = torch.topk(t(x), 3, dim=axis, largest=not ascending, sorted=True)
    np.testing.assert_array_equal(values, tv.numpy())
    np.testing.assert_array_equal(indices, ti.numpy())
    assert indices.dtype == np.int32
    order = one("argsort", x=x, axis=axis, ascending=ascending)
    np.testing.assert_array_equal(order, torch.argsort(t(x), dim=axis, descending=not ascending,
                                                       stable=True).numpy())


def test_topk_options():
    x = rand(2, 5)
    assert len(run("topk", x=x, k=2, return_indices=False)) == 1
    assert run("topk", x=x, k=-1)[0].shape == (2, 5)  # iOS17: k=-1 selects all
    assert run("topk", x=x, output_indices_dtype="uint16")[1].dtype == np.uint16
    assert run("topk", x=x)[0].shape == (2, 1)  # k defaults to 1


# ---------------------------------------------------------------- layout

def test_pixel_shuffle_and_unshuffle_are_torch():
    x = rand(2, 12, 3, 4)
    np.testing.assert_array_equal(one("pixel_shuffle", x=x, upscale_factor=2),
                                  F.pixel_shuffle(t(x), 2).numpy())
    y = rand(1, 3, 6, 9)
    np.testing.assert_array_equal(one("pixel_unshuffle", x=y, downscale_factor=np.uint32(3)),
                                  F.pixel_unshuffle(t(y), 3).numpy())


def test_depth_to_space_is_tensorflow_dcr_and_space_to_depth_inverts_it():
    b, c2 = 2, 3
    x = rand(1, b * b * c2, 2, 3)
    got = one("depth_to_space", x=x, block_size=b)
    assert got.shape == (1, c2, 4, 6)
    for c in range(c2):
        for h in range(4):
            for w in range(6):
                i, j = h % b, w % b
                assert got[0, c, h, w] == x[0, (i * b + j) * c2 + c, h // b, w // b]
    np.testing.assert_array_equal(one("space_to_depth", x=got, block_size=b), x)
    # differs from torch's pixel_shuffle (CRD) when C' > 1
    assert not np.array_equal(got, F.pixel_shuffle(t(x), b).numpy())


def test_space_to_batch_coremltools_example_with_padding():
    x = np.arange(1, 17, dtype=np.float32).reshape(2, 1, 2, 4)
    got = one("space_to_batch", x=x, block_shape=[2, 2], paddings=[[0, 0], [2, 0]])
    assert got.reshape(8, 3).tolist() == [[0, 1, 3], [0, 9, 11], [0, 2, 4], [0, 10, 12],
                                          [0, 5, 7], [0, 13, 15], [0, 6, 8], [0, 14, 16]]


def test_space_to_batch_hand_example_and_round_trip():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    got = one("space_to_batch", x=x, block_shape=[2, 2], paddings=[[0, 0], [0, 0]])
    assert got.shape == (4, 1, 2, 2)
    assert got[:, 0].tolist() == [[[0, 2], [8, 10]], [[1, 3], [9, 11]],
                                  [[4, 6], [12, 14]], [[5, 7], [13, 15]]]
    y = rand(2, 3, 5, 3)
    padded = one("space_to_batch", x=y, block_shape=[2, 3], paddings=[[1, 0], [2, 1]])
    assert padded.shape == (12, 3, 3, 2)
    back = one("batch_to_space", x=padded, block_shape=[2, 3], crops=[[1, 0], [2, 1]])
    np.testing.assert_array_equal(back, y)
