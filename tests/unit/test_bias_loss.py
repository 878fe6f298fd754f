"""Bias Loss: weights, edge cases and gradient path."""
import math

import pytest
import torch
import torch.nn.functional as F

from models.bias_loss import bias_loss, variance_weights


def test_equal_variances_give_constant_weight_without_nan():
    feats = torch.stack([torch.tensor([1.0, -1.0] * 16).view(8, 2, 2)] * 4)  # same variance
    z = variance_weights(feats, alpha=0.3, beta=0.3)
    assert not torch.isnan(z).any()
    assert torch.allclose(z, torch.full((4,), math.exp(0.0) - 0.3))


def test_batch_of_one_is_finite():
    logits = torch.randn(1, 10)
    loss = bias_loss(logits, torch.tensor([3]), torch.randn(1, 4, 2, 2))
    assert torch.isfinite(loss)


def test_higher_variance_sample_gets_larger_weight():
    low = torch.randn(8, 3, 3) * 0.1
    mid = torch.randn(8, 3, 3) * 1.0
    high = torch.randn(8, 3, 3) * 5.0
    z = variance_weights(torch.stack([mid, high, low]), alpha=0.3, beta=0.3)
    assert z[1] > z[0] > z[2]
    assert z[1] == pytest.approx(math.exp(0.3) - 0.3)   # max variance -> v' = 1
    assert z[2] == pytest.approx(1.0 - 0.3)             # min variance -> v' = 0


def test_matches_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = torch.tensor([0, 0, 1])
    feats = torch.tensor([[0.0, 2.0], [0.0, 4.0], [0.0, 0.0]])  # variances 1, 4, 0 (biased)
    v_norm = torch.tensor([0.25, 1.0, 0.0])
    z = torch.exp(0.3 * v_norm) - 0.3
    ce = F.cross_entropy(logits, targets, reduction="none")
    expected = (z * ce).mean()
    assert bias_loss(logits, targets, feats).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_reaches_features_only_through_logits():
    """The variance weight is a constant: d loss / d features equals the gradient obtained
    when the same weights z are applied as fixed numbers (i.e. only the logits path)."""
    torch.manual_seed(0)
    feats = torch.randn(5, 6, 2, 2, requires_grad=True)
    head = torch.nn.Linear(24, 3)
    targets = torch.tensor([0, 1, 2, 0, 1])
    bias_loss(head(feats.flatten(1)), targets, feats).backward()
    got = feats.grad.clone()

    feats2 = feats.detach().clone().requires_grad_(True)
    z = variance_weights(feats2.detach())
    ce = F.cross_entropy(head(feats2.flatten(1)), targets, reduction="none")
    (z * ce).mean().backward()
    assert torch.allclose(got, feats2.grad, atol=1e-7)

    # and the features' own variance contributes nothing: with a head that ignores them,
    # the features receive no gradient at all.
    feats3 = torch.randn(5, 6, 2, 2, requires_grad=True)
    logits = torch.randn(5, 3, requires_grad=True)
    loss = bias_loss(logits, targets, feats3)
    assert loss.grad_fn is not None
    assert torch.autograd.grad(loss, feats3, allow_unused=True)[0] is None
