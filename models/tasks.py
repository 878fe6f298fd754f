"""The task table: one row per task. The manifest schema's task enum, `--task`, the CLI
help, `pocket list` and the docs read it (or a test checks them against it).

A row says how a model of that task is scored (metrics, headline metric and its
direction), how verification compares an artifact's first output with PyTorch's beyond
raw parity (argmax agreement is right for a classifier, wrong for a depth map), which
runtime_py postprocess kind turns outputs into an answer, and what `pocket run` shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from models import metrics
from runtime_py.errors import UsageError, did_you_mean

MetricsFn = Callable[[np.ndarray, np.ndarray], dict]
AgreementFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    postprocess: str                       # runtime_py postprocess kind
    shows: str                             # what `pocket run` prints and draws
    metrics: MetricsFn | None = None       # (first output of a split, targets) -> {name: value}
    metric: str | None = None              # the headline metric (a key of metrics())
    higher_is_better: bool = True
    agreement: tuple[str, AgreementFn] | None = None   # (name, fn(artifact, pytorch))
    postprocess_defaults: dict = field(default_factory=dict)

    def headline(self, values: dict) -> float:
        return values[self.metric]

    def drop_points(self, pytorch: float, artifact: float) -> float:
        """How many points the artifact loses against PyTorch (negative: it gains)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return 100.0 * sign * (pytorch - artifact)

    def default_postprocess(self) -> dict:
        """The manifest's postprocess section for a model that brings no own parameters."""
        return {"kind": self.postprocess, **self.postprocess_defaults}


def _class_agreement(output: np.ndarray, reference: np.ndarray) -> float:
    return metrics.argmax_agreement(output.reshape(len(output), -1), reference.reshape(len(reference), -1), -1)


def _pixel_agreement(output: np.ndarray, reference: np.ndarray) -> float:
    return metrics.argmax_agreement(output, reference, 1)


def _within_5_percent(output: np.ndarray, reference: np.ndarray) -> float:
    """Share of values within 5% of PyTorch's (relative to its mean magnitude)."""
    scale = max(float(np.mean(np.abs(reference))), 1e-12)
    return float(np.mean(np.abs(output - reference) <= 0.05 * scale))


TASKS: tuple[Task, ...] = (
    Task("classification", "one label per image", "classify",
         "the top-k labels with softmax scores",
         metrics.classification_metrics, "top1_accuracy",
         agreement=("top1_agreement", _class_agreement),
         postprocess_defaults={"top_k": 5, "softmax": True}),
    Task("segmentation", "a class per pixel", "segment",
         "per-class area of the class map; --out draws input | colour overlay side by side",
         metrics.segmentation_metrics, "miou",
         agreement=("pixel_agreement", _pixel_agreement),
         postprocess_defaults={"resize_back": "nearest", "alpha": 0.5}),
    Task("depth", "relative depth per pixel", "heatmap",
         "min/mean/max of the depth map; --out draws input | colour-mapped depth",
         metrics.depth_metrics, "delta1",
         agreement=("within_5pct", _within_5_percent),
         postprocess_defaults={"colormap": "magma", "resize_back": "bilinear"}),
    Task("saliency", "a [0, 1] saliency map", "heatmap",
         "share of the image above the threshold; --out draws input | saliency map",
         metrics.saliency_metrics, "max_f",
         agreement=("within_5pct", _within_5_percent),
         postprocess_defaults={"colormap": "gray", "resize_back": "bilinear", "threshold": 0.5,
                               "sigmoid": False}),
    Task("raw", "any model: outputs returned as they are", "raw",
         "the output tensors' shapes and value ranges"),
)

TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)


def get_task(name: str) -> Task:
    for task in TASKS:
        if task.name == name:
            return task
    raise UsageError(f"unknown task '{name}'{did_you_mean(name, TASK_NAMES)}; "
                     f"choose one of {', '.join(TASK_NAMES)}")


def task_of_metric(metric: str) -> Task:
    """The task whose headline metric is `metric` (evaluation data names its metric)."""
    for task in TASKS:
        if task.metric == metric:
            return task
    raise UsageError(f"no task reports the metric '{metric}'")
