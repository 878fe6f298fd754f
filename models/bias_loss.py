"""Bias Loss (Abrahamyan et al., ICCV 2021): cross-entropy re-weighted by feature variance.

For each sample i, v_i is the variance of its last feature map (all channels and positions).
v'_i = (v_i - min v) / (max v - min v) over the batch, computed without gradient, and
z_i = exp(alpha * v'_i) - beta. The loss is mean_i z_i * CE_i. Samples whose features
carry little information (low variance) are down-weighted relative to the rest.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def variance_weights(features: torch.Tensor, alpha: float = 0.3,
                     beta: float = 0.3) -> torch.Tensor:
    """Per-sample weights z = exp(alpha * v') - beta, detached, shape [N].

    If all variances are equal (including a batch of one) v' is 0 for every sample, so
    z = 1 - beta everywhere (no NaN from dividing by a zero range).
    """
    with torch.no_grad():
        v = features.detach().flatten(1).float().var(dim=1, unbiased=False)
        lo, hi = v.min(), v.max()
        span = hi - lo
        v_norm = torch.where(span > 0, (v - lo) / torch.where(span > 0, span, 1.0),
                             torch.zeros_like(v))
        return torch.exp(alpha * v_norm) - beta


def bias_loss(logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor,
              alpha: float = 0.3, beta: float = 0.3) -> torch.Tensor:
    """Mean over the batch of z_i * CE(logits_i, targets_i); gradients flow via logits only."""
    ce = F.cross_entropy(logits, targets, reduction="none")
    z = variance_weights(features, alpha, beta).to(ce.dtype)
    return (z * ce).mean()
