"""Shared building blocks for zoo models (MobileNetV3-style), plus a MAC counter.

Every block here is export-friendly: static shapes, no data-dependent control flow.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ActFactory = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never dropping more than 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation, 'same' padding for odd k."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1, act: ActFactory | None = nn.ReLU) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        squeezed = make_divisible(channels / reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV3 bneck: expand 1x1, depthwise kxk, optional SE, project 1x1 (linear).

    The residual is added when stride is 1 and input/output channels match.
    The expansion conv is omitted when the expanded width equals the input width.
    """

    def __init__(self, in_ch: int, exp_ch: int, out_ch: int, kernel: int, stride: int,
                 use_se: bool, act: ActFactory) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if exp_ch != in_ch:
            layers.append(ConvBNAct(in_ch, exp_ch, 1, act=act))
        layers.append(ConvBNAct(exp_ch, exp_ch, kernel, stride, groups=exp_ch, act=act))
        if use_se:
            layers.append(SqueezeExcite(exp_ch))
        layers.append(ConvBNAct(exp_ch, out_ch, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_macs(module: nn.Module, input_shape: tuple[int, ...], *extra_shapes: tuple[int, ...]) -> int:
    """Multiply-accumulates of one eval-mode forward pass at `input_shape` (and the shapes
    of further forward arguments), per input sample.

    Counted with torch's FlopCounterMode (MACs = FLOPs / 2): convolutions, linears and
    matmuls (mm/bmm/addmm), whatever their inner batch (e.g. patches routed to an encoder);
    BN, activations, pooling and elementwise ops are ignored (the usual convention). The
    module's train/eval mode is restored afterwards.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    try:
        module.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(torch.zeros(input_shape), *(torch.zeros(s) for s in extra_shapes))
    finally:
        module.train(was_training)
    return counter.get_total_flops() // 2 // input_shape[0]
