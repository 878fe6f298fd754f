"""Turn raw model outputs into answers, as the manifest's `postprocess` says."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from runtime_py.errors import PocketError, did_you_mean


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


SMALL_HEAD = 64   # up to this many classes plain Python beats a dozen numpy calls


def _top_k_small(scores: np.ndarray, k: int, use_softmax: bool) -> tuple[list[int], list[float]]:
    """Plain Python: ranks the logits (softmax keeps their order), exponentiates once."""
    values = scores.tolist()
    order = sorted(range(len(values)), key=values.__getitem__, reverse=True)[:k]   # stable
    if not use_softmax:
        return order, [values[i] for i in order]
    peak = values[order[0]]
    total = sum([math.exp(v - peak) for v in values])
    return order, [math.exp(values[i] - peak) / total for i in order]


def _top_k_large(scores: np.ndarray, k: int, use_softmax: bool) -> tuple[list[int], list[float]]:
    if use_softmax:
        scores = softmax(scores)
    order = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = order[np.argsort(-scores[order], kind="stable")]
    return order.tolist(), scores[order].tolist()


Postprocessor = Callable[[list[np.ndarray]], dict]


def classify(params: dict, labels: list[str] | None) -> Postprocessor:
    """Top-k labels with (softmax) scores for a [1, classes] output; ties keep class order."""
    top_k = int(params.get("top_k", 5))
    use_softmax = bool(params.get("softmax", True))
    if top_k < 1:
        raise PocketError(f"postprocess top_k must be at least 1, got {top_k}; rebuild the bundle")

    def label(i: int) -> str:
        return labels[i] if labels and i < len(labels) else str(i)

    def post(outputs: list[np.ndarray]) -> dict:
        scores = outputs[0].ravel()
        k = min(top_k, scores.size)
        if scores.size <= SMALL_HEAD:
            order, values = _top_k_small(scores, k, use_softmax)
        else:
            order, values = _top_k_large(scores.astype(np.float64), k, use_softmax)
        top = [{"index": i, "label": label(i), "score": v} for i, v in zip(order, values)]
        return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}

    return post


def raw(params: dict, labels: list[str] | None) -> Postprocessor:
    """The runtime's outputs, untouched."""
    return lambda outputs: {"outputs": outputs}


# kind -> factory(params, labels) -> post(outputs); the factory reads its parameters once
POSTPROCESSORS: dict[str, Callable[[dict, list[str] | None], Postprocessor]] = {
    "classify": classify,
    "raw": raw,
}


def get_postprocessor(kind: str) -> Callable[[dict, list[str] | None], Postprocessor]:
    """The factory of a postprocess kind; bind it once with (params, labels)."""
    if kind not in POSTPROCESSORS:
        raise PocketError(f"unknown postprocess kind '{kind}'{did_you_mean(kind, POSTPROCESSORS)}; "
                          "this runtime_py is older than the bundle: upgrade pocketvision")
    return POSTPROCESSORS[kind]
