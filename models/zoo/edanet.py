"""EDANet (Lo et al., "Efficient Dense Modules of Asymmetric Convolution for Real-Time
Semantic Segmentation", 2019), scaled to train on 2 CPU cores.

Downsampling blocks and densely connected EDA modules (asymmetric 3x1/1x3 convolutions,
the second pair dilated); a 1x1 projection to the classes at 1/8 resolution, then bilinear
upsampling x8. Export-friendly: explicit pooling geometry, no in-place ops, static shapes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models import scenes
from models.registry import register
from models.scenes_data import MEAN, SCENES6, STD
from models.spec import CardSpec, InputSpec, ModelSpec, OutputSpec, TrainSpec, Variant

# The paper's configuration (for reference and for `EDANet.paper()`).
PAPER_STAGE1_DILATIONS = (1, 1, 1, 2, 2)
PAPER_STAGE2_DILATIONS = (2, 2, 4, 4, 8, 8, 16, 16)


class DownsamplerBlock(nn.Module):
    """3x3 stride-2 conv; when widening, concatenated with a 2x2 max-pool of the input;
    then BN + ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.use_pool = out_ch > in_ch
        conv_out = out_ch - in_ch if self.use_pool else out_ch
        self.conv = nn.Conv2d(in_ch, conv_out, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.use_pool:
            y = torch.cat([y, F.max_pool2d(x, kernel_size=2, stride=2, padding=0)], dim=1)
        return self.act(self.bn(y))


class EDAModule(nn.Module):
    """1x1 conv-BN-ReLU -> 3x1 -> 1x3-BN-ReLU -> dilated 3x1 -> dilated 1x3-BN-ReLU ->
    dropout; the k new channels are concatenated in front of the input (dense growth)."""

    def __init__(self, in_ch: int, growth: int, dilation: int, dropout: float) -> None:
        super().__init__()
        d = dilation
        self.conv1x1 = nn.Conv2d(in_ch, growth, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(growth)
        self.conv3x1_1 = nn.Conv2d(growth, growth, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(growth, growth, (1, 3), padding=(0, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(growth)
        self.conv3x1_2 = nn.Conv2d(growth, growth, (3, 1), padding=(d, 0), dilation=(d, 1))
        self.conv1x3_2 = nn.Conv2d(growth, growth, (1, 3), padding=(0, d), dilation=(1, d),
                                   bias=False)
        self.bn2 = nn.BatchNorm2d(growth)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout2d(dropout)
        self.out_channels = in_ch + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn0(self.conv1x1(x)))
        y = self.act(self.bn1(self.conv1x3_1(self.conv3x1_1(y))))
        y = self.act(self.bn2(self.conv1x3_2(self.conv3x1_2(y))))
        return torch.cat([self.dropout(y), x], dim=1)


def eda_stage(in_ch: int, growth: int, dilations: tuple[int, ...],
              dropout: float) -> tuple[nn.Sequential, int]:
    """A run of EDA modules; (the stage, its output channels)."""
    modules = []
    for d in dilations:
        modules.append(EDAModule(in_ch, growth, d, dropout))
        in_ch += growth
    return nn.Sequential(*modules), in_ch


class EDANet(nn.Module):
    """EDANet for 128x128 RGB scenes, scaled from the paper to train on 2 CPU cores.

    Paper: DS(3->15), DS(15->60), 5 EDA (k=40, dilations 1,1,1,2,2) -> 260 ch,
    DS(260->130), 8 EDA (k=40, dilations 2,2,4,4,8,8,16,16) -> 450 ch, 1x1 -> classes,
    bilinear x8; 0.68 M parameters (`EDANet.paper()` builds it: 681,875 here).

    Scaled here (the defaults), depth and dilation pattern unchanged: growth rate k
    40 -> 16, stem widths 15/60 -> 8/32, stage-2 transition 130 -> 56 (half the stage-1
    output, as in the paper); 120,669 parameters, 48.0 M MACs at 1x3x128x128. Why: the
    plan trains ~2,000 images x ~15 epochs x 6 runs on 2 shared cores, i.e. <= 0.25 s per
    step of 16. Measured (torch.set_num_threads(1), batch 16 of 128x128, forward +
    cross-entropy + backward + SGD step, median of 10 steps after 2 warm-up): paper
    configuration 0.68-0.79 s/step; these defaults 0.16-0.19 s/step (EPE-EDANet
    0.23-0.25). Widths that are multiples of 8 matter on this CPU: k=18 (stems 9/27) or
    k=20 took ~0.3 s/step. At 128x128 the 1/8 map is 16x16, so the last two modules'
    16-dilated taps read only zero padding besides the centre; they are kept anyway, for
    the paper's shape.
    """

    def __init__(self, num_classes: int = 6, growth: int = 16, stem: tuple[int, int] = (8, 32),
                 stage2_width: int = 56,
                 stage1_dilations: tuple[int, ...] = PAPER_STAGE1_DILATIONS,
                 stage2_dilations: tuple[int, ...] = PAPER_STAGE2_DILATIONS,
                 dropout: float = 0.02, head: bool = True) -> None:
        super().__init__()
        self.down1 = DownsamplerBlock(3, stem[0])
        self.down2 = DownsamplerBlock(stem[0], stem[1])
        self.stage1, ch1 = eda_stage(stem[1], growth, tuple(stage1_dilations), dropout)
        self.down3 = DownsamplerBlock(ch1, stage2_width)
        self.stage2, ch2 = eda_stage(stage2_width, growth, tuple(stage2_dilations), dropout)
        self.num_features = ch2
        # head=False: features only (a wrapper fuses them and projects itself)
        self.project = nn.Conv2d(ch2, num_classes, 1) if head else None
        self._init_weights()

    @classmethod
    def paper(cls, num_classes: int = 6) -> "EDANet":
        """The paper's full-size configuration (k=40, 15/60/130, 5 + 8 modules)."""
        return cls(num_classes, growth=40, stem=(15, 60), stage2_width=130,
                   stage1_dilations=PAPER_STAGE1_DILATIONS,
                   stage2_dilations=PAPER_STAGE2_DILATIONS)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image [B, 3, H, W] -> final feature map [B, num_features, H/8, W/8]."""
        x = self.stage1(self.down2(self.down1(x)))
        return self.stage2(self.down3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image [B, 3, H, W] -> class logits [B, num_classes, H, W]."""
        logits = self.project(self.forward_features(x))
        return F.interpolate(logits, scale_factor=8.0, mode="bilinear", align_corners=False)


EPOCHS = 15


def segmentation_loss(outputs, masks: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy on the logits (the first output)."""
    logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
    return F.cross_entropy(logits, masks.long())


# One recipe for the scene segmenters, so EDANet and EPE-EDANet compare like for like.
SCENE_RECIPE = dict(losses={"ce": segmentation_loss}, epochs=EPOCHS, batch_size=16, lr=3e-3,
                    weight_decay=1e-4, warmup_epochs=0.5, eval_every=3)
SCENE_INPUT = InputSpec(shape=(1, 3, 128, 128), mean=MEAN, std=STD)


def scene_postprocess() -> dict:
    """What the scene models add to the segmentation task's postprocess: the scene palette."""
    return {"palette": [list(c) for c in scenes.PALETTE]}


def scene_analysis(model: nn.Module, spec: ModelSpec) -> dict:
    """Real photos (scikit-image's brick, grass and gravel close-ups) and a picture sheet."""
    from models.card import CARDS_DIR
    from models.photos import COLOUR_PHOTOS, MATERIAL_PHOTOS, material_check, photo_sheet

    inp, post = spec.input.manifest(), dict(spec.postprocess)
    sheet = photo_sheet(CARDS_DIR / "img" / f"{spec.name}_photos.jpg", model, inp, post, spec.labels,
                        COLOUR_PHOTOS + tuple(MATERIAL_PHOTOS))
    return {"material_photos": material_check(model, inp, post, spec.labels),
            "photo_sheet": sheet.relative_to(CARDS_DIR).as_posix()}


def render_scene_analysis(analysis: dict) -> list[str]:
    rows = ["", "### Real photos (scikit-image, never seen in training)",
            "The model only ever saw procedural scenes. scikit-image ships grey close-up photos "
            "of three of its materials; the share of each photo's pixels labelled as that "
            "material is a small check on real images:", "",
            "| photo | pixels labelled as its material | dominant class |", "|---|---:|---|"]
    for photo, row in analysis["material_photos"].items():
        rows.append(f"| `{photo}` | {100 * row['correct_share']:.1f}% | {row['dominant']} |")
    rows += ["", "The colour photos (astronaut, coffee, chelsea, rocket) have no ground truth: "
             "they show what the model does out of its domain (input | overlay; with EPE, also "
             "the encoder each patch was routed to).", "",
             f"![photos]({analysis['photo_sheet']})"]
    return rows


CARD = CardSpec(
    paper=("EDANet, Lo et al., \"Efficient Dense Modules of Asymmetric Convolution for "
           "Real-Time Semantic Segmentation\" (ACM MM Asia 2019)"),
    architecture=(
        "Downsampling blocks (3×3 stride-2 conv, concatenated with a 2×2 max-pool of the input "
        "when the width grows; BN + ReLU) and EDA modules (1×1 → 3×1 → 1×3 → dilated 3×1 → "
        "dilated 1×3, BN + ReLU, dropout; output concatenated to the input: dense "
        "connectivity). Stage 1: DS(3→8), DS(8→32), 5 EDA modules, dilations 1,1,1,2,2; "
        "stage 2: DS(→56), 8 EDA modules, dilations 2,2,4,4,8,8,16,16; 1×1 projection to the "
        "6 classes; bilinear ×8 upsampling (align_corners=False).\n\n"
        "Scaled from the paper to train on 2 CPU cores: growth rate 40 → 16, stem widths "
        "15/60 → 8/32, stage-2 transition 130 → 56; depth and dilations as in the paper. "
        "Measured (1 thread, batch 16 at 128×128, forward + backward + step): 0.16–0.20 s "
        "here vs 0.65–0.79 s for the paper's widths (`EDANet.paper()`, 0.68 M parameters). "
        "At 128×128 the 1/8 map is 16×16, so the two dilation-16 modules read only padding "
        "besides their centre taps: kept for the paper's shape."),
    limitations=(
        "Trained on procedural scenes only (6 materials, hard-edged regions, 128×128): real "
        "photos of other things get these six labels anyway — there is no 'other' class.",
        "Sky and wall are both nearly flat and share colours; they are the most confused pair.",
        "Input is resized to 128×128 without keeping the aspect ratio: thin structures in large "
        "photos vanish, and the class map is blocky when mapped back to a large photo.",
    ),
    analysis=scene_analysis,
    render_analysis=render_scene_analysis,
)


@register("edanet")
def edanet() -> ModelSpec:
    return ModelSpec(
        build=EDANet,
        weights="edanet.scenes6.safetensors",
        task="segmentation",
        input=SCENE_INPUT,
        outputs=(OutputSpec("logits", (1, 6, 128, 128), "per-pixel class logits; argmax gives the class map"),),
        postprocess=scene_postprocess(),
        labels=list(scenes.CLASSES),
        data=SCENES6,
        training=TrainSpec(**SCENE_RECIPE, variants=(Variant("edanet", "EDANet"),)),
        card=CARD,
        golden_cases=1,
        description=("EDANet (scaled: growth 16, 0.12 M parameters) for 6-class semantic "
                     "segmentation of 128×128 procedural scenes (sky, wall, water, grass, brick, gravel)."),
    )
