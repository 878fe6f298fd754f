"""Turn raw model outputs into answers, as the manifest's `postprocess` says."""
from __future__ import annotations

from typing import Callable

import numpy as np

from runtime_py.errors import PocketError, did_you_mean


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def classify(outputs: list[np.ndarray], params: dict, labels: list[str] | None) -> dict:
    """Top-k labels with scores for a [1, classes] output."""
    scores = outputs[0].reshape(-1)
    if params.get("softmax", True):
        exp = np.exp(scores - scores.max())
        scores = exp / exp.sum()
    k = min(int(params.get("top_k", 5)), scores.size)
    order = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    order = order[np.argsort(-scores[order], kind="stable")].tolist()
    values = scores[order].tolist()
    names = labels or [str(i) for i in range(scores.size)]
    top = [{"index": i, "label": names[i], "score": v} for i, v in zip(order, values)]
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
