"""Task metrics on numpy arrays: what training, evaluation, cards and verification report.

Each function takes the model's first output for a whole split ([N, ...], float) and the
targets, and returns a dict whose keys are metric names; every value lies in [0, 1]
unless its name says otherwise, so "points" are 100 x a difference.
"""
from __future__ import annotations

import numpy as np


def classification_metrics(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """top1_accuracy of [N, classes] logits against [N] class ids."""
    predicted = np.argmax(logits.reshape(len(logits), -1), axis=-1)
    return {"top1_accuracy": float(np.mean(predicted == np.asarray(targets).reshape(-1)))}


def confusion(predicted: np.ndarray, targets: np.ndarray, classes: int) -> np.ndarray:
    """[classes, classes] pixel counts, rows = target class, columns = predicted class;
    target ids outside 0..classes-1 (an 'ignore' label) are left out."""
    t = np.asarray(targets).reshape(-1).astype(np.int64)
    p = np.asarray(predicted).reshape(-1).astype(np.int64)
    keep = (t >= 0) & (t < classes)
    return np.bincount(t[keep] * classes + p[keep], minlength=classes * classes).reshape(classes, classes)


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class intersection over union; NaN for a class absent from targets and predictions."""
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def segmentation_metrics(logits: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """mIoU (mean over classes that occur), pixel accuracy and iou/<class id> of
    [N, C, H, W] logits against [N, H, W] class ids, from one confusion matrix over the split."""
    classes = logits.shape[1]
    matrix = confusion(np.argmax(logits, axis=1), targets, classes)
    iou = iou_from_confusion(matrix)
    out = {"miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
           "pixel_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1))}
    out.update({f"iou/{c}": float(v) for c, v in enumerate(iou) if np.isfinite(v)})
    return out


def depth_metrics(pred: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """delta1 (share of pixels with max(p/t, t/p) < 1.25) and abs_rel (mean |p - t| / t,
    lower is better), on pixels with a positive target depth."""
    p = np.asarray(pred, np.float64).reshape(-1)
    t = np.asarray(targets, np.float64).reshape(-1)
    valid = t > 0
    p, t = np.maximum(p[valid], 1e-6), t[valid]
    ratio = np.maximum(p / t, t / p)
    return {"delta1": float(np.mean(ratio < 1.25)) if t.size else 0.0,
            "abs_rel": float(np.mean(np.abs(p - t) / t)) if t.size else 0.0}


def saliency_metrics(pred: np.ndarray, targets: np.ndarray, beta2: float = 0.3) -> dict[str, float]:
    """mae (mean absolute error of the [0, 1] map, lower is better) and max_f (the best
    F-beta, beta^2 = 0.3 as is usual for saliency, over 32 thresholds) against binary masks."""
    p = np.clip(np.asarray(pred, np.float64).reshape(-1), 0.0, 1.0)
    t = np.asarray(targets).reshape(-1) > 0.5
    best = 0.0
    for thr in np.linspace(0.0, 1.0, 32, endpoint=False)[1:]:
        hit = p >= thr
        tp = float(np.sum(hit & t))
        precision, recall = tp / max(hit.sum(), 1), tp / max(t.sum(), 1)
        if precision + recall > 0:
            best = max(best, (1 + beta2) * precision * recall / (beta2 * precision + recall))
    return {"max_f": best, "mae": float(np.mean(np.abs(p - t)))}


def argmax_agreement(output: np.ndarray, reference: np.ndarray, axis: int) -> float:
    """Share of positions where the artifact's argmax over `axis` equals PyTorch's."""
    return float(np.mean(np.argmax(output, axis=axis) == np.argmax(reference, axis=axis)))


def relative_error(output: np.ndarray, reference: np.ndarray) -> float:
    """Mean |output - reference| over the mean |reference| (0 is identical)."""
    ref = np.asarray(reference, np.float64)
    return float(np.mean(np.abs(np.asarray(output, np.float64) - ref)) / max(np.mean(np.abs(ref)), 1e-12))
