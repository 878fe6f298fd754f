"""Turn raw model outputs into answers, as the manifest's `postprocess` says."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from runtime_py import dense
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


Postprocessor = Callable[..., dict]     # (outputs, image_size=None) -> answer


def classify(params: dict, labels: list[str] | None) -> Postprocessor:
    """Top-k labels with (softmax) scores for a [1, classes] output; ties keep class order."""
    top_k = int(params.get("top_k", 5))
    use_softmax = bool(params.get("softmax", True))
    if top_k < 1:
        raise PocketError(f"postprocess top_k must be at least 1, got {top_k}; rebuild the bundle")

    def label(i: int) -> str:
        return labels[i] if labels and i < len(labels) else str(i)

    def post(outputs: list[np.ndarray], image_size=None) -> dict:
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
    return lambda outputs, image_size=None: {"outputs": outputs}


def classify_lines(result: dict) -> list[str]:
    return [f"{item['label']:>12}  {item['score']:.4f}" for item in result["top_k"]]


def raw_lines(result: dict) -> list[str]:
    return [f"output {i}: shape {list(o.shape)}, min {float(o.min()):.4g}, max {float(o.max()):.4g}"
            for i, o in enumerate(result["outputs"])]


@dataclass(frozen=True)
class Kind:
    """A postprocess kind: factory(params, labels) -> post(outputs, image_size), read once
    per Session; `lines` is what `pocket run` prints; `draw` (runtime_py.render) the picture."""

    factory: Callable[[dict, list[str] | None], Postprocessor]
    lines: Callable[[dict], list[str]]
    draw: str | None = None


POSTPROCESSORS: dict[str, Kind] = {
    "classify": Kind(classify, classify_lines),
    "segment": Kind(dense.segment, dense.segment_lines, "segment"),
    "heatmap": Kind(dense.heatmap, dense.heatmap_lines, "heatmap"),
    "raw": Kind(raw, raw_lines),
}


def get_kind(kind: str) -> Kind:
    if kind not in POSTPROCESSORS:
        raise PocketError(f"unknown postprocess kind '{kind}'{did_you_mean(kind, POSTPROCESSORS)}; "
                          "this runtime_py is older than the bundle: upgrade pocketvision")
    return POSTPROCESSORS[kind]


def get_postprocessor(kind: str) -> Callable[[dict, list[str] | None], Postprocessor]:
    """The factory of a postprocess kind; bind it once with (params, labels)."""
    return get_kind(kind).factory
