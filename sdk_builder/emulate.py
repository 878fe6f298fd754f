"""Core ML weight compression emulated in PyTorch (accuracy estimates without macOS).

Core ML artifacts cannot predict on Linux, so the builder cannot measure their accuracy.
`emulate_weights(module, recipe)` returns a copy of the model whose Conv/Linear weights
are what the Core ML recipe stores, so evaluating it in PyTorch estimates the artifact's
accuracy ("estimated in PyTorch (weights as compressed; Core ML prediction needs macOS)").

What is emulated, with the constants of sdk_builder.formats.coreml (one place for each):
  * BatchNorm folded into the preceding convolution first, as coremltools' converter does
    (per-tensor palettes and pruning act on the folded weights);
  * every Conv/Linear weight and bias rounded to float16;
  * weights with more than WEIGHT_THRESHOLD elements compressed:
      w8              int8 symmetric per-output-channel (scale = max|w| / 127, in fp16)
      palettize-Nbit  per-tensor 1-D k-means, 2^N clusters, quantile init (deterministic),
                      fp16 look-up table
      prune-50        weights with |w| <= the PRUNE_SPARSITY percentile of |w| zeroed
                      (per tensor; matches coremltools exactly).
Not emulated: fp16 activations/compute, and coremltools' own k-means (scikit-learn,
k-means++ seeded 0), whose palette may differ slightly from ours.
"""
from __future__ import annotations

import copy
from typing import Any

from runtime_py.errors import UsageError
from sdk_builder.formats.coreml import (PALETTE_BITS, PRUNE_SPARSITY, RECIPES,
                                        WEIGHT_THRESHOLD)

INT8_MAX = 127            # symmetric int8 range [-127, 127]
KMEANS_ITERATIONS = 100


def emulate_weights(module: Any, recipe: str) -> Any:
    """A deep copy of `module` (eval mode) with Conv/Linear weights transformed the way
    the Core ML recipe stores them; `module` itself is left untouched. The copy carries
    `pocket_emulation` = {"recipe", "folded_batchnorms", "compressed_layers", "fp16_layers"}."""
    import torch

    if recipe not in RECIPES:
        from runtime_py.errors import did_you_mean

        raise UsageError(f"no Core ML emulation for recipe '{recipe}'"
                         f"{did_you_mean(recipe, RECIPES)}; it emulates: {', '.join(RECIPES)}")
    emulated, folded = _fold_batchnorm(copy.deepcopy(module).eval())
    compressed = fp16_only = 0
    with torch.no_grad():
        for layer in emulated.modules():
            if not isinstance(layer, _weight_layer_types()):
                continue
            weight = layer.weight.data.to(torch.float16).to(torch.float32)
            if recipe != "fp16" and weight.numel() > WEIGHT_THRESHOLD:
                axis = 1 if isinstance(layer, _transposed_types()) else 0
                weight = compress_tensor(weight, recipe, channel_axis=axis)
                compressed += 1
            else:
                fp16_only += 1
            layer.weight.data.copy_(weight.to(layer.weight.dtype))
            if layer.bias is not None:
                layer.bias.data.copy_(layer.bias.data.to(torch.float16).to(layer.bias.dtype))
    emulated.pocket_emulation = {"recipe": recipe, "folded_batchnorms": folded,
                                 "compressed_layers": compressed, "fp16_layers": fp16_only}
    return emulated


def compress_tensor(weight: Any, recipe: str, channel_axis: int = 0) -> Any:
    """One fp16-valued weight tensor as the recipe stores it (float32 result)."""
    if recipe == "w8":
        return _int8_per_channel(weight, channel_axis)
    if recipe in PALETTE_BITS:
        return _palettize(weight, PALETTE_BITS[recipe])
    if recipe in PRUNE_SPARSITY:
        return _prune(weight, PRUNE_SPARSITY[recipe])
    if recipe == "fp16":
        return weight
    raise UsageError(f"no Core ML emulation for recipe '{recipe}'")


def int8_scales(weight: Any, channel_axis: int = 0) -> Any:
    """Per-output-channel symmetric int8 scales, shaped to broadcast: 2*max|w| / 254 in
    float16 arithmetic, as coremltools computes them on the fp16 weights."""
    import torch

    w16 = weight.to(torch.float16)
    dims = [d for d in range(weight.dim()) if d != channel_axis]
    peak = w16.abs().amax(dim=dims, keepdim=True) if dims else w16.abs()
    scale = (peak * 2) / (2 * INT8_MAX)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _int8_per_channel(weight: Any, channel_axis: int) -> Any:
    import torch

    scale = int8_scales(weight, channel_axis)
    q = torch.clamp(torch.round(weight.to(torch.float16) / scale), -INT8_MAX, INT8_MAX)
    return (q * scale).to(torch.float32)


def kmeans_1d(values: Any, clusters: int) -> tuple[Any, Any]:
    """Deterministic 1-D k-means (Lloyd) of a flat tensor: (sorted centroids, labels).
    Centroids start at evenly spaced quantiles of the unique values, weighted by counts."""
    import torch

    uniq, inverse, counts = torch.unique(values.flatten().double(), return_inverse=True,
                                         return_counts=True)
    k = min(clusters, uniq.numel())
    if k == uniq.numel():
        return uniq.float(), inverse.reshape(values.shape)
    cdf = torch.cumsum(counts, 0).double() / counts.sum()
    targets = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    centroids = uniq[torch.searchsorted(cdf, targets).clamp(max=uniq.numel() - 1)]
    centroids = torch.unique(centroids)
    labels = None
    for _ in range(KMEANS_ITERATIONS):
        bounds = (centroids[1:] + centroids[:-1]) / 2
        new_labels = torch.bucketize(uniq, bounds)
        sums = torch.zeros_like(centroids).index_add_(0, new_labels, uniq * counts)
        mass = torch.zeros_like(centroids).index_add_(0, new_labels, counts.double())
        centroids = torch.where(mass > 0, sums / mass.clamp(min=1), centroids)
        if labels is not None and torch.equal(labels, new_labels):
            break
        labels = new_labels
    bounds = (centroids[1:] + centroids[:-1]) / 2
    labels = torch.bucketize(uniq, bounds)
    return centroids.float(), labels[inverse].reshape(values.shape)


def _palettize(weight: Any, nbits: int) -> Any:
    import torch

    lut, labels = kmeans_1d(weight, 2 ** nbits)
    lut = lut.to(torch.float16).to(torch.float32)
    return lut[labels]


def _prune(weight: Any, sparsity: float) -> Any:
    """Zero every weight whose magnitude is <= the `sparsity` percentile of the tensor's
    magnitudes (linear interpolation; coremltools' rule, ties included)."""
    import numpy as np
    import torch

    magnitude = weight.abs()
    threshold = float(np.percentile(magnitude.numpy(), sparsity * 100))
    return torch.where(magnitude <= threshold, torch.zeros_like(weight), weight)


def _weight_layer_types() -> tuple[type, ...]:
    from torch import nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear) + _transposed_types()


def _transposed_types() -> tuple[type, ...]:
    from torch import nn

    return (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _fold_batchnorm(module: Any) -> tuple[Any, int]:
    """Fold every BatchNorm that directly follows a convolution into it (eval mode);
    (module, number folded). Tries torch.fx (any wiring), else adjacent pairs inside
    nn.Sequential containers."""
    from torch import nn

    before = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    try:
        from torch.fx.experimental.optimization import fuse

        fused = fuse(module, inplace=False)
    except Exception:   # not symbolically traceable: fold what nn.Sequential makes visible
        fused = _fold_sequential(module)
    after = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    return fused.eval(), before - after


def _fold_sequential(module: Any) -> Any:
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and \
                    isinstance(bn, nn.modules.batchnorm._BatchNorm):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return module
