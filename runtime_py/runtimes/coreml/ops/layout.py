"""Depth/space rearrangements on NCHW tensors (iOS15 tensor_transformation.py, iOS16
pixel_unshuffle). depth_to_space / space_to_depth / space_to_batch / batch_to_space follow
TensorFlow's layout (the TF converter maps those ops 1:1, in NCHW): depth_to_space takes
channel (i*b + j)*C' + c to pixel (h*b + i, w*b + j) ("DCR"); pixel_shuffle is torch's
PixelShuffle: channel c*r*r + i*r + j ("CRD")."""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import array, check, get, to_int, to_ints


def _nchw(inputs: dict[str, Any]) -> np.ndarray:
    x = array(inputs, "x")
    check(x.ndim == 4, f"x must be rank 4 (N, C, H, W), got shape {list(x.shape)}")
    return x


def _block(inputs: dict[str, Any], name: str) -> int:
    b = to_int(get(inputs, name))
    check(b >= 1, f"{name} must be >= 1, got {b}")
    return b


def _to_depth(x: np.ndarray, b: int, channel_major: bool) -> np.ndarray:
    n, c, h, w = x.shape
    check(h % b == 0 and w % b == 0, f"spatial size {h}x{w} not divisible by block {b}")
    y = x.reshape(n, c, h // b, b, w // b, b)
    order = (0, 1, 3, 5, 2, 4) if channel_major else (0, 3, 5, 1, 2, 4)
    return y.transpose(order).reshape(n, c * b * b, h // b, w // b)


def _to_space(x: np.ndarray, b: int, channel_major: bool) -> np.ndarray:
    n, c, h, w = x.shape
    check(c % (b * b) == 0, f"channels {c} not divisible by block^2 = {b * b}")
    cc = c // (b * b)
    if channel_major:
        y = x.reshape(n, cc, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, b, b, cc, h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, cc, h * b, w * b)


@kernel("depth_to_space")
def depth_to_space(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """[N, C, H, W] -> [N, C/b^2, H*b, W*b], TF (DCR) order."""
    return [_to_space(_nchw(inputs), _block(inputs, "block_size"), channel_major=False)]


@kernel("space_to_depth")
def space_to_depth(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """[N, C, H, W] -> [N, C*b^2, H/b, W/b], TF order (inverse of depth_to_space)."""
    return [_to_depth(_nchw(inputs), _block(inputs, "block_size"), channel_major=False)]


@kernel("pixel_shuffle")
def pixel_shuffle(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """torch PixelShuffle: [N, C*r^2, H, W] -> [N, C, H*r, W*r]."""
    return [_to_space(_nchw(inputs), _block(inputs, "upscale_factor"), channel_major=True)]


@kernel("pixel_unshuffle")
def pixel_unshuffle(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """torch PixelUnshuffle: [N, C, H, W] -> [N, C*r^2, H/r, W/r]."""
    return [_to_depth(_nchw(inputs), _block(inputs, "downscale_factor"), channel_major=True)]


def _pairs(inputs: dict[str, Any], name: str) -> list[int]:
    vals = to_ints(get(inputs, name))
    check(len(vals) == 4 and min(vals) >= 0, f"{name} must be [[t, b], [l, r]] >= 0, got {vals}")
    return vals


@kernel("space_to_batch")
def space_to_batch(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """TF SpaceToBatchND in NCHW: pad, then blocks of block_shape go to the batch dim
    (batch index (i*bw + j)*N + n)."""
    x = _nchw(inputs)
    bh, bw = to_ints(get(inputs, "block_shape"))
    t, b, left, r = _pairs(inputs, "paddings")
    x = np.pad(x, [(0, 0), (0, 0), (t, b), (left, r)])
    n, c, h, w = x.shape
    check(bh >= 1 and bw >= 1 and h % bh == 0 and w % bw == 0,
          f"padded size {h}x{w} not divisible by block {bh}x{bw}")
    y = x.reshape(n, c, h // bh, bh, w // bw, bw).transpose(3, 5, 0, 1, 2, 4)
    return [y.reshape(bh * bw * n, c, h // bh, w // bw)]


@kernel("batch_to_space")
def batch_to_space(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """TF BatchToSpaceND in NCHW: the inverse of space_to_batch, then crops."""
    x = _nchw(inputs)
    bh, bw = to_ints(get(inputs, "block_shape"))
    t, b, left, r = _pairs(inputs, "crops")
    nb, c, h, w = x.shape
    check(bh >= 1 and bw >= 1 and nb % (bh * bw) == 0,
          f"batch {nb} not divisible by block {bh}x{bw}")
    n = nb // (bh * bw)
    y = x.reshape(bh, bw, n, c, h, w).transpose(2, 3, 4, 0, 5, 1).reshape(n, c, h * bh, w * bw)
    check(t + b < h * bh and left + r < w * bw, "crops remove the whole image")
    return [y[:, :, t:h * bh - b, left:w * bw - r]]
