"""Activations and softmax (iOS15 activation.py; iOS17 lets alpha/beta differ in dtype).

Computed in fp32 for fp16 inputs and returned in x's dtype. alpha/beta have no MIL default
(they are required inputs in the definitions), except prelu/softplus_parametric's vectors.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from runtime_py.runtimes.coreml.ops import kernel
from runtime_py.runtimes.coreml.ops._args import (
    array,
    axis_of,
    check,
    get,
    per_channel,
    require_float,
    to_float,
    to_int,
    to_str,
    work,
)
from runtime_py.runtimes.coreml.ops._special import erfc


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _float_input(inputs: dict[str, Any]) -> np.ndarray:
    x = array(inputs, "x")
    require_float(x)
    return x


def _simple(fn: Callable[[np.ndarray], np.ndarray], doc: str):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = _float_input(inputs)
        return [np.asarray(fn(work(x))).astype(x.dtype, copy=False)]

    run.__doc__ = doc
    return run


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


kernel("relu")(_simple(lambda x: np.maximum(x, 0), "max(x, 0)."))
kernel("relu6")(_simple(lambda x: np.minimum(np.maximum(x, 0), 6), "min(max(x, 0), 6)."))
kernel("sigmoid")(_simple(_sigmoid, "1 / (1 + exp(-x))."))
kernel("silu")(_simple(lambda x: x * _sigmoid(x), "x * sigmoid(x)."))
kernel("softplus")(_simple(_softplus, "log(1 + exp(x)), computed stably."))
kernel("softsign")(_simple(lambda x: x / (1 + np.abs(x)), "x / (1 + |x|)."))


def _with_alpha(fn: Callable[[np.ndarray, float], np.ndarray], doc: str):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = _float_input(inputs)
        alpha = to_float(get(inputs, "alpha"))
        with np.errstate(over="ignore"):
            return [np.asarray(fn(work(x), alpha)).astype(x.dtype, copy=False)]

    run.__doc__ = doc
    return run


def _with_alpha_beta(fn: Callable[[np.ndarray, float, float], np.ndarray], doc: str):
    def run(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
        x = _float_input(inputs)
        alpha, beta = to_float(get(inputs, "alpha")), to_float(get(inputs, "beta"))
        return [np.asarray(fn(work(x), alpha, beta)).astype(x.dtype, copy=False)]

    run.__doc__ = doc
    return run


kernel("leaky_relu")(_with_alpha(lambda x, a: np.where(x >= 0, x, a * x),
                                 "x if x >= 0 else alpha * x."))
kernel("elu")(_with_alpha(lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
                          "x if x > 0 else alpha * (exp(x) - 1)."))
kernel("thresholded_relu")(_with_alpha(lambda x, a: np.where(x >= a, x, 0),
                                       "x if x >= alpha else 0."))
kernel("sigmoid_hard")(_with_alpha_beta(
    lambda x, a, b: np.minimum(np.maximum(a * x + b, 0), 1), "min(max(alpha * x + beta, 0), 1)."))
kernel("scaled_tanh")(_with_alpha_beta(lambda x, a, b: a * np.tanh(b * x),
                                       "alpha * tanh(beta * x)."))
kernel("linear_activation")(_with_alpha_beta(lambda x, a, b: a * x + b, "alpha * x + beta."))
kernel("clamped_relu")(_with_alpha_beta(
    lambda x, a, b: np.minimum(np.where(x >= 0, x, a * x), b),
    "min(beta, x) if x >= 0 else min(beta, alpha * x)."))


@kernel("gelu")
def gelu(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """gelu with mode EXACT (default), TANH_APPROXIMATION or SIGMOID_APPROXIMATION."""
    x = _float_input(inputs)
    mode = to_str(get(inputs, "mode", "EXACT"))
    xw = work(x)
    if mode == "EXACT":
        y = 0.5 * xw.astype(np.float64) * erfc(-xw.astype(np.float64) / math.sqrt(2.0))
    elif mode == "TANH_APPROXIMATION":
        y = 0.5 * xw * (1 + np.tanh(math.sqrt(2 / math.pi) * (xw + 0.044715 * xw ** 3)))
    elif mode == "SIGMOID_APPROXIMATION":
        y = xw * _sigmoid(1.702 * xw)
    else:
        check(False, f"unknown gelu mode '{mode}' (EXACT, TANH_APPROXIMATION, "
                     "SIGMOID_APPROXIMATION)")
    return [np.asarray(y).astype(x.dtype)]


def _channel_vector(inputs: dict[str, Any], name: str, x: np.ndarray) -> np.ndarray:
    v = work(array(inputs, name)).reshape(-1)
    check(x.ndim >= 2, f"x must have a channel axis (rank >= 2), got shape {list(x.shape)}")
    check(v.size in (1, x.shape[1]), f"{name} has {v.size} values for {x.shape[1]} channels")
    return per_channel(v, x.ndim) if v.size > 1 else v.reshape([1] * x.ndim)


@kernel("prelu")
def prelu(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """x if x > 0 else alpha[c] * x, alpha per channel (axis 1)."""
    x = _float_input(inputs)
    alpha = _channel_vector(inputs, "alpha", x)
    xw = work(x)
    return [(np.maximum(xw, 0) + alpha * np.minimum(xw, 0)).astype(x.dtype)]


@kernel("softplus_parametric")
def softplus_parametric(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """alpha[c] * log(1 + exp(beta[c] * x)), per channel."""
    x = _float_input(inputs)
    alpha, beta = _channel_vector(inputs, "alpha", x), _channel_vector(inputs, "beta", x)
    return [(alpha * _softplus(beta * work(x))).astype(x.dtype)]


@kernel("softmax")
def softmax(inputs: dict[str, Any], attrs: dict[str, Any]) -> list[np.ndarray]:
    """exp(x) / sum(exp(x)) along axis (default -1), max-subtracted."""
    x = _float_input(inputs)
    axis = axis_of(to_int(get(inputs, "axis", -1)), x.ndim)
    xw = work(x)
    e = np.exp(xw - xw.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)]
