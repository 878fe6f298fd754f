"""Turn raw model outputs into answers, as the manifest's `postprocess` says."""
from __future__ import annotations

import heapq
import math
from typing import Callable

import numpy as np

from runtime_py.errors import PocketError, did_you_mean


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


SMALL_HEAD = 64   # up to this many classes plain Python beats a dozen numpy calls


def _top_k_small(logits: list[float], k: int, use_softmax: bool) -> tuple[list[int], list[float]]:
    if use_softmax:
        peak = max(logits)
        exps = [math.exp(v - peak) for v in logits]
        total = sum(exps)
        logits = [e / total for e in exps]
    order = heapq.nlargest(k, range(len(logits)), key=logits.__getitem__)
    return order, [logits[i] for i in order]


def _top_k_large(scores: np.ndarray, k: int, use_softmax: bool) -> tuple[list[int], list[float]]:
    if use_softmax:
        scores = softmax(scores)
    order = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = order[np.argsort(-scores[order], kind="stable")]
    return order.tolist(), scores[order].tolist()


def classify(outputs: list[np.ndarray], params: dict, labels: list[str] | None) -> dict:
    """Top-k labels with (softmax) scores for a [1, classes] output; ties keep class order."""
    scores = outputs[0].reshape(-1)
    k = min(int(params.get("top_k", 5)), scores.size)
    use_softmax = params.get("softmax", True)
    if scores.size <= SMALL_HEAD:
        order, values = _top_k_small(scores.tolist(), k, use_softmax)
    else:
        order, values = _top_k_large(scores.astype(np.float64), k, use_softmax)
    top = [{"index": i, "label": labels[i] if labels else str(i), "score": v}
           for i, v in zip(order, values)]
    return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}


def raw(outputs: list[np.ndarray], params: dict, labels: list[str] | None) -> dict:
    return {"outputs": outputs}


POSTPROCESSORS: dict[str, Callable[[list[np.ndarray], dict, list[str] | None], dict]] = {
    "classify": classify,
    "raw": raw,
}


def get_postprocessor(kind: str) -> Callable[[list[np.ndarray], dict, list[str] | None], dict]:
    if kind not in POSTPROCESSORS:
        raise PocketError(f"unknown postprocess kind '{kind}'{did_you_mean(kind, POSTPROCESSORS)}; "
                          "this runtime_py is older than the bundle: upgrade pocketvision")
    return POSTPROCESSORS[kind]
