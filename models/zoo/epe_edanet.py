"""EPE-EDANet: EDANet with entropy-routed patch encoders (EPE; Abrahamyan & Deligiannis,
"Entropy-based feature extraction for real-time semantic segmentation").

The EPE feature map (1/8 resolution) is concatenated with EDANet's final features before
the 1x1 class projection. The routing runs inside the model (models.zoo._epe), so every export
carries it; forward also returns the per-patch route codes, which the builder compares
exactly between PyTorch and each artifact.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models import scenes
from models.zoo._epe import ENCODER_NAMES, EPE, FLOAT_MODULES, QuantBarrier, executed_macs
from models.registry import register
from models.scenes_data import SCENES6
from models.spec import CardSpec, ModelSpec, OutputSpec, TrainSpec, Variant
from models.zoo.edanet import (PAPER_STAGE1_DILATIONS, PAPER_STAGE2_DILATIONS, SCENE_INPUT,
                               SCENE_RECIPE, EDANet, render_scene_analysis, scene_analysis,
                               scene_postprocess)


class EPEEDANet(nn.Module):
    """EDANet (its defaults: k=16, stems 8/32, transition 56, 5 + 8 modules) plus EPE
    (16x16 patches, 20/40/40% to large/medium/small encoders, 16 channels at 1/8).

    forward(x) -> (logits [B, C, H, W], routes [B, N] float32: per patch in raster order
    the encoder index, 0 small, 1 medium, 2 large). Ties in entropy (e.g. flat patches of
    one colour) go by patch index: the lower index ranks first, i.e. towards the larger
    encoder. EPE adds ~11% parameters to EDANet."""

    def __init__(self, num_classes: int = 6, growth: int = 16, stem: tuple[int, int] = (8, 32),
                 stage2_width: int = 56,
                 stage1_dilations: tuple[int, ...] = PAPER_STAGE1_DILATIONS,
                 stage2_dilations: tuple[int, ...] = PAPER_STAGE2_DILATIONS,
                 dropout: float = 0.02, image_size: tuple[int, int] = (128, 128),
                 patch: int = 16, epe_channels: int = 16, bins: int = 16,
                 mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.backbone = EDANet(num_classes, growth, stem, stage2_width, stage1_dilations,
                               stage2_dilations, dropout, head=False)
        self.epe = EPE(image_size, patch, epe_channels, bins, mean=mean, std=std)
        self.barrier = QuantBarrier()   # keeps int8 input rounding off the router (LiteRT)
        self.project = nn.Conv2d(self.backbone.num_features + epe_channels, num_classes, 1)
        nn.init.kaiming_normal_(self.project.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.project.bias)

    def routes_and_entropies(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(routes [B, N], Shannon entropies [B, N]) per patch in raster order."""
        routes, _rank, entropy = self.epe.route(x)
        return routes, entropy

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone.forward_features(self.barrier(x))
        patch_features, routes = self.epe(x)
        logits = self.project(torch.cat([features, patch_features], dim=1))
        logits = F.interpolate(logits, scale_factor=8.0, mode="bilinear", align_corners=False)
        return logits, routes


CARD_LIMITS = (
    "Trained on procedural scenes only (6 materials, hard-edged regions, 128×128): real "
    "photos of other things get these six labels anyway — there is no 'other' class.",
    "Routing is by grey-level entropy only: colourful but flat regions count as flat, and "
    "a fixed 20/40/40 split is spent on every image, even an all-flat one (ties then go "
    "by patch index).",
    "The gather matmul (64×64×768) costs more than the three encoders together at this "
    "size: routing saves MACs only against running every encoder on every patch.",
)


def _routes_by_class(model: EPEEDANet, spec: ModelSpec) -> dict:
    """On the held-out scenes: per class (patches at least 90% of one class), the share
    routed to each encoder, and the mean entropy of each encoder's patches."""
    inputs, masks = spec.data.heldout()
    patch = model.epe.entropy.patch
    counts = torch.zeros(len(scenes.CLASSES), 3)
    entropy_sum, entropy_n = torch.zeros(3), torch.zeros(3)
    with torch.no_grad():
        for i in range(0, len(inputs), 50):
            routes, entropy = model.routes_and_entropies(inputs[i:i + 50])
            onehot = F.one_hot(masks[i:i + 50].long(), len(scenes.CLASSES)).permute(0, 3, 1, 2).float()
            share = F.avg_pool2d(onehot, patch).flatten(2).transpose(1, 2)      # [B, N, classes]
            purity, cls = share.max(-1)
            r = routes.long()
            for enc in range(3):
                entropy_sum[enc] += entropy[r == enc].sum()
                entropy_n[enc] += (r == enc).sum()
                pure = (purity >= 0.9) & (r == enc)
                counts[:, enc] += torch.bincount(cls[pure], minlength=len(scenes.CLASSES)).float()
    shares = counts / counts.sum(1, keepdim=True).clamp(min=1)
    return {"per_class": {name: [round(float(v), 4) for v in shares[c]] for c, name in enumerate(scenes.CLASSES)},
            "pure_patches": {name: int(counts[c].sum()) for c, name in enumerate(scenes.CLASSES)},
            "mean_entropy_nats": [round(float(v), 4) for v in entropy_sum / entropy_n.clamp(min=1)]}


def _analysis(model: EPEEDANet, spec: ModelSpec) -> dict:
    from models.layers import count_params
    from models.registry import get

    params = {"epe_edanet": count_params(model), "edanet": count_params(get("edanet").build()),
              "epe_module": count_params(model.epe)}
    return {"executed_macs": executed_macs(model, spec.input.shape), "params": params,
            "routes": _routes_by_class(model, spec),
            **scene_analysis(model, spec)}


def _render_analysis(a: dict) -> list[str]:
    m, r, p = a["executed_macs"], a["routes"], a["params"]
    every = m["all_encoders_every_patch"]
    extra = p["epe_edanet"] - p["edanet"]
    rows = ["", f"EPE adds {extra:,} parameters to EDANet's {p['edanet']:,} (+{100 * extra / p['edanet']:.1f}%; "
            f"the paper: about +10%) and {m['total'] - m['backbone']:,} executed MACs "
            f"(+{100 * (m['total'] - m['backbone']) / m['backbone']:.1f}%).",
            "", "### Executed MACs at 1×3×128×128 (routing included)", "",
            "| part | patches | MACs |", "|---|---:|---:|",
            f"| EDANet backbone | – | {m['backbone']:,} |"]
    for name, enc in m["encoders"].items():
        rows.append(f"| {name} encoder | {enc['patches']} | {enc['macs']:,} |")
    rows += [f"| routing (histograms, ranks, gather/put-back matmuls) | 64 | {m['routing']['total']:,} |",
             f"| fusion (EPE channels of the 1×1 projection) | – | {m['fusion']:,} |",
             f"| **total executed** | | **{m['total']:,}** |",
             f"| all three encoders on every patch instead (no routing) | 64 × 3 | {every['total']:,} |", "",
             f"Routing executes {every['encoders'] - m['routing_saving']:,} MACs for the encoders and "
             f"the router together where running every encoder on every patch would take "
             f"{every['encoders']:,}: a saving of {m['routing_saving']:,} MACs "
             f"({100 * m['routing_saving'] / every['total']:.1f}% of the unrouted model).", "",
             "### Where the patches go (held-out scenes, patches ≥ 90% one class)", "",
             "| class | pure patches | small | medium | large |", "|---|---:|---:|---:|---:|"]
    for name, shares in r["per_class"].items():
        rows.append(f"| {name} | {r['pure_patches'][name]:,} | " + " | ".join(f"{100 * s:.0f}%" for s in shares) + " |")
    rows += ["", "Mean patch entropy (nats) per encoder, small / medium / large: "
             + " / ".join(f"{v:.3f}" for v in r["mean_entropy_nats"]) + "."]
    return rows + render_scene_analysis(a)


CARD = CardSpec(
    paper=("EPE, Abrahamyan & Deligiannis, \"Entropy-based feature extraction for real-time "
           "semantic segmentation\", on EDANet"),
    architecture=(
        "EDANet (the zoo's `edanet`, same widths) plus an entropy-routed patch encoder (EPE). "
        "The 128×128 image is cut into 64 non-overlapping 16×16 patches; each is scored by the "
        "Shannon entropy of its soft grey-level histogram (16 triangular bins over grey in "
        "[0, 1], averaged per patch); the 13 highest-entropy patches (20%) go to the large "
        "encoder, the next 26 (40%) to the medium one and the lowest 25 to the small one. "
        "Each encoder is a small stride-8 fully convolutional net turning a 16×16 patch into a "
        "2×2 cell of 16 channels; the cells are put back in place as a 16-channel map at 1/8 "
        "resolution and concatenated with EDANet's features before the 1×1 class projection.\n\n"
        "The routing runs inside every exported artifact without sort, topk, gather or "
        "scatter: a patch's rank is counted with pairwise comparisons written as "
        "ceil(clamp(e_j − e_i, 0, 0.5)) (ties by patch index through a constant triangular "
        "matrix), ranks become one-hot selection matrices relu(1 − |r − rank|), and patches "
        "are gathered and put back with batched matmuls. The model also returns the route of "
        "every patch (0 small, 1 medium, 2 large), which the builder checks exactly against "
        "PyTorch for every artifact, int8 included; int8 recipes keep the routing in float."),
    limitations=CARD_LIMITS,
    analysis=_analysis,
    render_analysis=_render_analysis,
)


@register("epe_edanet")
def epe_edanet() -> ModelSpec:
    post = scene_postprocess() | {"patch_routes": {"output": 1, "patch": 16,
                                                   "names": [f"{n} encoder" for n in ENCODER_NAMES]}}
    return ModelSpec(
        build=EPEEDANet,
        weights="epe_edanet.scenes6.safetensors",
        task="segmentation",
        input=SCENE_INPUT,
        outputs=(OutputSpec("logits", (1, 6, 128, 128), "per-pixel class logits; argmax gives the class map"),
                 OutputSpec("routes", (1, 64), "encoder per 16×16 patch in raster order: 0 small, "
                            "1 medium, 2 large", exact=True)),
        postprocess=post,
        labels=list(scenes.CLASSES),
        data=SCENES6,
        training=TrainSpec(**SCENE_RECIPE, variants=(Variant("epe_edanet", "EPE-EDANet"),
                                                     Variant("edanet", "EDANet", model="edanet"))),
        card=CARD,
        keep_float=FLOAT_MODULES,
        golden_cases=1,
        description=("EPE-EDANet: EDANet with entropy-routed patch encoders (+11% parameters) for "
                     "6-class segmentation of 128×128 procedural scenes; routing inside the graph."),
    )
