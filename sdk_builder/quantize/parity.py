"""Numbers that compare an artifact with PyTorch (task metrics: models.metrics)."""
from __future__ import annotations

import numpy as np


def parity(reference: np.ndarray, output: np.ndarray) -> dict:
    """max abs error, SNR (dB) and cosine similarity of output vs reference."""
    ref = np.asarray(reference, np.float64).reshape(-1)
    out = np.asarray(output, np.float64).reshape(-1)
    if ref.shape != out.shape:
        raise ValueError(f"output has {out.size} values, reference {ref.size}")
    noise = float(np.sum((ref - out) ** 2))
    signal = float(np.sum(ref ** 2))
    snr = float("inf") if noise == 0 else 10.0 * np.log10(max(signal, 1e-30) / noise)
    norms = float(np.linalg.norm(ref) * np.linalg.norm(out))
    cosine = float(np.dot(ref, out) / norms) if norms > 0 else float(noise == 0)
    return {"max_abs_error": float(np.max(np.abs(ref - out))) if ref.size else 0.0,
            "snr_db": snr, "cosine": cosine}


def merge_parity(items: list[dict]) -> dict:
    """Worst case over several golden inputs."""
    return {"max_abs_error": max(i["max_abs_error"] for i in items),
            "snr_db": min(i["snr_db"] for i in items),
            "cosine": min(i["cosine"] for i in items)}


def json_number(x: float) -> float | str:
    """JSON has no Infinity: an exact match's SNR is written as 'inf'."""
    return "inf" if x == float("inf") else x
