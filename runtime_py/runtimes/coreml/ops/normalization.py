"""batch_norm, instance_norm, layer_norm, l2_norm, local_response_norm (iOS15
normalization.py; iOS17 only lets parameters differ in dtype). Computed in fp32, returned in
x's dtype; variances are biased; epsilon defaults: 1e-5 (l2_norm 1e-6)."""
from __future__ import annotations

from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    axes_of,
    check,
    get,
    per_channel,
    rank_at_least,
    require_float,
    to_float,
    to_int,
    work,
)


def _float_x(inputs: dict[str, Any], min_rank: int) -> np.ndarray:
    x = array(inputs, "x")
    require_float(x)
    rank_at_least(x, min_rank)
    return x


def _channel(inputs: dict[str, Any], name: str, x: np.ndarray, default: float) -> np.ndarray:
    if inputs.get(name) is None:
        return np.asarray(default, np.float32)
    v = work(array(inputs, name)).reshape(-1)
    check(v.size == x.shape[1], f"'{name}' has {v.size} values for {x.shape[1]} channels")
    return per_channel(v, x.ndim)


@kernel("batch_norm")
def batch_norm(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta, per channel (axis 1)."""
    x = _float_x(inputs, 2)
    get(inputs, "mean"), get(inputs, "variance")  # both required
    mean, var = _channel(inputs, "mean", x, 0.0), _channel(inputs, "variance", x, 1.0)
    gamma, beta = _channel(inputs, "gamma", x, 1.0), _channel(inputs, "beta", x, 0.0)
    eps = to_float(get(inputs, "epsilon", 1e-5))
    y = (work(x) - mean) / np.sqrt(var + np.float32(eps)) * gamma + beta
    return [y.astype(x.dtype)]


def _normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    xw = work(x)
    centred = xw - xw.mean(axis=axes, keepdims=True)
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    return centred / np.sqrt(var + np.asarray(eps, xw.dtype))


@kernel("instance_norm")
def instance_norm(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Normalise each (n, c) over its spatial dims, then gamma/beta per channel."""
    x = _float_x(inputs, 3)
    gamma, beta = _channel(inputs, "gamma", x, 1.0), _channel(inputs, "beta", x, 0.0)
    eps = to_float(get(inputs, "epsilon", 1e-5))
    y = _normalize(x, tuple(range(2, x.ndim)), eps) * gamma + beta
    return [y.astype(x.dtype)]


def _affine(inputs: dict[str, Any], name: str, x: np.ndarray, axes: tuple[int, ...]):
    if inputs.get(name) is None:
        return None
    v = work(array(inputs, name))
    want = [x.shape[a] for a in sorted(axes)]
    check(v.size == int(np.prod(want)),
          f"'{name}' shape {list(v.shape)} does not match normalized shape {want}")
    return v.reshape([x.shape[i] if i in axes else 1 for i in range(x.ndim)])


@kernel("layer_norm")
def layer_norm(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """Normalise over axes (default: all), then gamma/beta of shape x.shape[axes]."""
    x = _float_x(inputs, 1)
    axes = axes_of(get(inputs, "axes", list(range(x.ndim))), x.ndim)
    check(len(axes) > 0, "layer_norm needs at least one axis")
    eps = to_float(get(inputs, "epsilon", 1e-5))
    y = _normalize(x, axes, eps)
    gamma, beta = _affine(inputs, "gamma", x, axes), _affine(inputs, "beta", x, axes)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return [y.astype(x.dtype)]


@kernel("l2_norm")
def l2_norm(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x / sqrt(sum(x^2) + epsilon) over the last three dims (leading dims are batch)."""
    x = _float_x(inputs, 3)
    eps = to_float(get(inputs, "epsilon", 1e-6))
    xw = work(x)
    total = np.sum(xw * xw, axis=(-3, -2, -1), keepdims=True)
    return [(xw / np.sqrt(total + np.asarray(eps, xw.dtype))).astype(x.dtype)]


@kernel("local_response_norm")
def local_response_norm(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x / (k + alpha/size * sum of x^2 over `size` channels)^beta. Channels are axis -3
    (C of [C, H, W] / [N, C, H, W]): the coremltools smoke test on a rank-3 input sums only
    x_c^2. The window spans size//2 channels before and (size-1)//2 after, as torch (the
    op tests compare rank-4 inputs with torch.nn.LocalResponseNorm)."""
    x = _float_x(inputs, 3)
    size = to_int(get(inputs, "size"))
    check(size >= 1, f"size must be >= 1, got {size}")
    alpha = to_float(get(inputs, "alpha", 1e-4))
    beta = to_float(get(inputs, "beta", 0.75))
    k = to_float(get(inputs, "k", 1.0))
    xw = np.moveaxis(work(x), -3, 0)
    widths = [(size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 1)
    csum = np.cumsum(np.pad(xw * xw, widths), axis=0)
    csum = np.concatenate([np.zeros_like(csum[:1]), csum], axis=0)
    window = csum[size:] - csum[:-size]
    y = np.moveaxis(xw / (k + alpha / size * window) ** beta, 0, -3)
    return [y.astype(x.dtype)]
