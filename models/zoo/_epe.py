"""Entropy-based patch encoding (EPE; Abrahamyan & Deligiannis, "Entropy-based feature
extraction for real-time semantic segmentation"), written to export exactly.

The image is cut into non-overlapping P x P patches; each patch is scored by the Shannon
entropy of its soft grey-level histogram; the highest-entropy 20% go to a large encoder,
the next 40% to a medium one and the rest to a small one; the encoded patches are put
back in place as a feature map at 1/8 resolution.

Routing without sort/argsort/topk/gather/scatter (those do not lower, or do not delegate,
or break ties differently per runtime): a patch's rank is the number of patches that come
before it, counted by pairwise comparisons; ranks become one-hot selection matrices, and
patches are gathered and put back with batched matmuls. Ties (exactly equal entropies,
e.g. flat patches of one colour) are broken by patch index: the lower raster index ranks
first, as a stable descending sort would. Every routing module is listed in
FLOAT_MODULES: int8 quantization must leave them float, or quantization noise reorders
patches whose entropies are close.

Exactness notes: `e_j > e_i` is computed as ceil(clamp(e_j - e_i, 0, 0.5)), which equals
the comparison for finite values, except that XNNPACK flushes denormal differences to 0
(two entropies closer than 1.2e-38 then count as tied); ranks, counts and route codes
are small integers, exact in float16 and float32.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LUMA = (0.299, 0.587, 0.114)       # ITU-R BT.601 grey weights
ENCODER_NAMES = ("small", "medium", "large")     # index = route code = position in EPE.encoders


def image_to_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, (H/p)*(W/p), C*p*p]: raster patch order, features (c, i, j).

    Written with <= 4-D reshapes/permutes (Core ML's rank limit is 5; pixel_unshuffle
    decomposes to 6-D)."""
    b, c, h, w = x.shape
    gh, gw = h // patch, w // patch
    t = x.reshape(b * c * gh, patch, gw, patch).permute(0, 2, 1, 3)
    t = t.reshape(b, c, gh * gw, patch * patch).permute(0, 2, 1, 3)
    return t.reshape(b, gh * gw, c * patch * patch)


def patches_to_image(t: torch.Tensor, channels: int, cell: int, grid: tuple[int, int]
                     ) -> torch.Tensor:
    """Inverse layout of image_to_patches: [B, gh*gw, C*cell*cell] -> [B, C, gh*cell, gw*cell]."""
    gh, gw = grid
    b = t.shape[0]
    t = t.reshape(b, gh * gw, channels, cell * cell).permute(0, 2, 1, 3)
    t = t.reshape(b * channels * gh, gw, cell, cell).permute(0, 2, 1, 3)
    return t.reshape(b, channels, gh * cell, gw * cell)


def group_sizes(n: int, fractions: Sequence[float] = (0.2, 0.4)) -> tuple[int, int, int]:
    """(large, medium, small) patch counts: round(f * n) for the first two, rest small."""
    large, medium = round(fractions[0] * n), round(fractions[1] * n)
    return large, medium, n - large - medium


def exact_identity(x: torch.Tensor) -> torch.Tensor:
    """relu(x) - relu(-x) == x, as ops LiteRT's converter does not see through.

    Under int8, litert-torch 0.10 moves a quantize/dequantize pair back through reshapes,
    slices and transposes onto their float source, and turns a bmm fed by a dequantize
    into a float FULLY_CONNECTED with a non-constant weight, which LiteRT's XNNPACK
    delegate refuses. A SUB stops both."""
    return F.relu(x) - F.relu(-x)


class PatchEntropy(nn.Module):
    """Shannon entropy of each patch's soft grey-level histogram: [B,3,H,W] -> [B,1,gh,gw].

    Grey = luma of the de-normalised input, clamped to [0, 1] as
    1 - relu(1 - relu(g)) (LiteRT turns clamp(0, 1) into RELU_0_TO_1, which its XNNPACK
    delegate refuses); K triangle bins relu(1 - |(K-1) g - k|) sum to 1 per pixel; the
    per-patch average is the histogram p; entropy -sum p log(p + eps) (a constant 1x1
    conv sums the bins). A patch of one grey value at a bin centre has entropy ~0; between
    two centres it spreads over two bins (entropy <= log 2); uniform over bins: ~log K."""

    def __init__(self, patch: int = 16, bins: int = 16, eps: float = 1e-6,
                 mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.patch, self.bins, self.eps = patch, bins, eps
        # grey = sum_c luma_c (x_c std_c + mean_c), as per-channel scalars: explicit mul/add
        # fix the summation order in every runtime (a 3->1 conv is also ~80x slower in eager)
        self.grey_scale = tuple(float(w * s) for w, s in zip(LUMA, std))
        self.grey_shift = float(sum(w * m for w, m in zip(LUMA, mean)))
        # a broadcast against K centres, not a 1->K 1x1 conv: same maps, ~2x faster in eager
        self.register_buffer("centres", torch.arange(bins, dtype=torch.float32)
                             .reshape(1, bins, 1, 1), persistent=False)
        self.register_buffer("neg_sum", -torch.ones(1, bins, 1, 1), persistent=False)

    def histogram(self, x: torch.Tensor) -> torch.Tensor:
        """Soft histogram per patch: [B, K, gh, gw], each patch's K values sum to 1."""
        w = self.grey_scale
        g = x[:, 0:1] * w[0] + x[:, 1:2] * w[1] + x[:, 2:3] * w[2] + self.grey_shift
        g = 1.0 - F.relu(1.0 - F.relu(g))
        tri = F.relu(1.0 - torch.abs(g * float(self.bins - 1) - self.centres))
        return F.avg_pool2d(tri, self.patch, self.patch, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.histogram(x)
        return F.conv2d(p * torch.log(p + self.eps), self.neg_sum)


class PatchRanker(nn.Module):
    """Entropies [B,1,gh,gw] -> ranks [B, N] (0 = highest entropy; ties: lower index first)
    and route codes [B, N] (0 small, 1 medium, 2 large) in raster order."""

    def __init__(self, n: int, sizes: tuple[int, int, int]) -> None:
        super().__init__()
        self.n, self.sizes = n, sizes
        # before_if_tied[j, i] = 1 when j < i: an equal-entropy patch j then ranks first
        tied = torch.triu(torch.ones(n, n), diagonal=1).reshape(1, n, n, 1)
        self.register_buffer("before_if_tied", tied, persistent=False)
        self.register_buffer("after_if_tied", 1.0 - tied, persistent=False)
        self.register_buffer("count", torch.ones(1, n, 1, 1), persistent=False)
        self.large_edge = sizes[0] - 0.5
        self.medium_edge = sizes[0] + sizes[1] - 0.5

    def forward(self, entropy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n
        e_j = entropy.reshape(-1, n, 1, 1)
        e_i = entropy.reshape(-1, 1, n, 1)
        diff = e_j - e_i                                            # [B, j, i, 1]
        j_greater = torch.ceil(torch.clamp(diff, 0.0, 0.5))
        i_greater = torch.ceil(torch.clamp(-diff, 0.0, 0.5))
        before = (self.before_if_tied * (1.0 - i_greater)) + (self.after_if_tied * j_greater)
        rank = F.conv2d(before, self.count).reshape(-1, n)           # sum over j
        routes = torch.ceil(torch.clamp(self.large_edge - rank, 0.0, 0.5)) + \
            torch.ceil(torch.clamp(self.medium_edge - rank, 0.0, 0.5))
        return rank, routes


def permutation_matrix(rank: torch.Tensor) -> torch.Tensor:
    """[B, N, N] with row r one-hot at the patch of rank r (for analysis and tests; the
    modules build its row blocks per group): relu(1 - |r - rank|) is exactly 0 or 1 for
    integer values."""
    slots = torch.arange(rank.shape[1], dtype=rank.dtype).reshape(1, -1, 1)
    return F.relu(1.0 - torch.abs(slots - rank.reshape(-1, 1, rank.shape[1])))


def _register_slots(module: nn.Module, sizes: tuple[int, int, int], shape: str) -> None:
    """Buffers slots_large/_medium/_small: the ranks each group takes, shaped [1, n_g, 1]
    ("row") or [1, 1, n_g] ("col"). Registered in the shape they are used in: a reshaped
    buffer stops counting as a constant for XNNPACK's partitioner. Like every routing
    constant here they are not persistent: computed, never stored with the weights."""
    starts = (0, sizes[0], sizes[0] + sizes[1])
    for name, start, size in zip(("large", "medium", "small"), starts, sizes):
        dims = (1, size, 1) if shape == "row" else (1, 1, size)
        module.register_buffer(f"slots_{name}", torch.arange(
            start, start + size, dtype=torch.float32).reshape(dims), persistent=False)


class PatchGather(nn.Module):
    """Image [B,C,H,W] + ranks -> per group (large, medium, small) its patches in rank
    order as an encoder batch [B*n_g, C, P, P], selected by one-hot bmm."""

    def __init__(self, patch: int, sizes: tuple[int, int, int]) -> None:
        super().__init__()
        self.patch = patch
        _register_slots(self, sizes, "row")

    def slots(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.slots_large, self.slots_medium, self.slots_small

    def forward(self, x: torch.Tensor, rank: torch.Tensor) -> list[torch.Tensor]:
        c, p = x.shape[1], self.patch
        patches = image_to_patches(x, p)                             # [B, N, C*P*P]
        n = patches.shape[1]
        out = []
        for slots in self.slots():
            select = F.relu(1.0 - torch.abs(slots - rank.reshape(-1, 1, n)))   # [B, n_g, N]
            out.append(torch.bmm(select, patches).reshape(-1, c, p, p))
        return out


class PatchScatter(nn.Module):
    """Encoded patches of each group [B*n_g, C', c, c] + ranks -> feature map
    [B, C', gh*c, gw*c] with every patch's code back at its place."""

    def __init__(self, grid: tuple[int, int], sizes: tuple[int, int, int]) -> None:
        super().__init__()
        self.grid, self.n = grid, grid[0] * grid[1]
        _register_slots(self, sizes, "col")

    def forward(self, encoded: Sequence[torch.Tensor], rank: torch.Tensor) -> torch.Tensor:
        c_out, cell = encoded[0].shape[1], encoded[0].shape[2]
        col_rank = rank.reshape(-1, self.n, 1)
        total = None
        for codes, slots in zip(encoded, (self.slots_large, self.slots_medium,
                                          self.slots_small)):
            put = F.relu(1.0 - torch.abs(col_rank - slots))            # [B, N, n_g]
            codes = exact_identity(codes.reshape(put.shape[0], -1, c_out * cell * cell))
            placed = torch.bmm(put, codes)
            total = placed if total is None else total + placed
        return patches_to_image(total, c_out, cell, self.grid)


class QuantBarrier(nn.Module):
    """exact_identity on the input of the int8 backbone: without it LiteRT quantizes the
    model input itself, so the router read an int8-rounded image (routes differed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return exact_identity(x)


class PatchEncoder(nn.Sequential):
    """3x3 conv-BN-ReLU layers given as (out_channels, stride); 16x16 -> 2x2 with three
    stride-2 layers."""

    def __init__(self, layers: Sequence[tuple[int, int]], in_ch: int = 3) -> None:
        mods: list[nn.Module] = []
        for out_ch, stride in layers:
            mods += [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
                     nn.BatchNorm2d(out_ch), nn.ReLU()]
            in_ch = out_ch
        super().__init__(*mods)
        self.out_channels = in_ch


def default_encoders(out_ch: int) -> tuple[list, list, list]:
    """(small, medium, large) layer lists; all end at `out_ch` channels, 1/8 resolution."""
    small = [(8, 2), (8, 2), (out_ch, 2)]
    medium = [(8, 2), (16, 2), (out_ch, 2)]
    large = [(16, 2), (24, 2), (out_ch, 2)]
    return small, medium, large


class EPE(nn.Module):
    """Entropy-routed patch encoders: image [B,3,H,W] -> (features [B, C', H/8, W/8],
    routes [B, N] float32: 0 small, 1 medium, 2 large per patch in raster order)."""

    def __init__(self, image_size: tuple[int, int] = (128, 128), patch: int = 16,
                 out_channels: int = 16, bins: int = 16,
                 fractions: Sequence[float] = (0.2, 0.4),
                 encoders: tuple[list, list, list] | None = None,
                 mean: Sequence[float] = (0.5, 0.5, 0.5),
                 std: Sequence[float] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.grid = (image_size[0] // patch, image_size[1] // patch)
        self.n = self.grid[0] * self.grid[1]
        self.sizes = group_sizes(self.n, fractions)
        self.out_channels = out_channels
        self.entropy = PatchEntropy(patch, bins, mean=mean, std=std)
        self.ranker = PatchRanker(self.n, self.sizes)
        self.gather = PatchGather(patch, self.sizes)
        self.scatter = PatchScatter(self.grid, self.sizes)
        layers = encoders or default_encoders(out_channels)
        self.encoders = nn.ModuleList(PatchEncoder(spec) for spec in layers)  # small, medium, large
        if any(e.out_channels != out_channels for e in self.encoders):
            raise ValueError(f"every EPE encoder must end at out_channels={out_channels}")

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(routes [B, N], ranks [B, N], entropies [B, N]) in raster patch order."""
        entropy = self.entropy(x)
        rank, routes = self.ranker(entropy)
        return routes, rank, entropy.reshape(-1, self.n)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        entropy = self.entropy(x)
        rank, routes = self.ranker(entropy)
        large, medium, small = self.gather(x, rank)
        enc_small, enc_medium, enc_large = self.encoders
        encoded = (enc_large(large), enc_medium(medium), enc_small(small))
        return self.scatter(encoded, rank), routes


# Routing modules: PT2E int8 must leave these float (sdk_builder's ExportJob.keep_float).
FLOAT_MODULES: tuple[type, ...] = (PatchEntropy, PatchRanker, PatchGather, PatchScatter,
                                   QuantBarrier)



def _macs_by_module(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """(total MACs, {module path: MACs}) of one eval forward (FlopCounterMode, FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    root = type(model).__name__
    per_module = {}
    for key, ops in counter.get_flop_counts().items():
        path = "" if key in (root, "Global") else key[len(root) + 1:]
        per_module[path] = max(per_module.get(path, 0), sum(ops.values()) // 2)
    return counter.get_total_flops() // 2, per_module


def _submodule(model: nn.Module, path: str | None) -> nn.Module | None:
    try:
        return model.get_submodule(path) if path else None
    except AttributeError:
        return None


def executed_macs(model: nn.Module, input_shape: tuple[int, ...],
                  fusion: str = "project") -> dict:
    """MACs actually executed at batch 1 (convs, linears, mm/bmm), split into backbone,
    each EPE encoder on its routed patches, routing overhead, and fusion (the share of the
    `fusion` conv fed by EPE channels); plus the counterfactual of running all three
    encoders on every patch (no routing) and what routing saves. Elementwise ops (the
    soft histogram's ~4 ops per pixel and bin) are not MACs and not counted."""
    was_training = model.training
    model.eval()
    try:
        total, per = _macs_by_module(model, torch.zeros((1, *input_shape[1:])))
        epes = [(name, m) for name, m in model.named_modules() if isinstance(m, EPE)]
        if not epes:
            return {"total": total, "backbone": total}
        name, epe = epes[0]
        prefix = f"{name}." if name else ""
        enc = {}
        every_patch = 0
        for i, (label, size) in enumerate(zip(ENCODER_NAMES, reversed(epe.sizes))):
            enc[label] = {"patches": size, "macs": per.get(f"{prefix}encoders.{i}", 0)}
            every_patch += enc[label]["macs"] // size * epe.n
        routing = {part: per.get(f"{prefix}{part}", 0)
                   for part in ("entropy", "ranker", "gather", "scatter")}
        routing["total"] = sum(routing.values())
        conv = _submodule(model, fusion)
        fused = per.get(fusion, 0) * epe.out_channels // conv.in_channels if conv else 0
        backbone = total - per.get(name, 0) - fused
        routed = sum(e["macs"] for e in enc.values()) + routing["total"]
        return {"total": total, "backbone": backbone, "encoders": enc, "routing": routing,
                "fusion": fused,
                "all_encoders_every_patch": {"encoders": every_patch,
                                             "total": backbone + fused + every_patch},
                "routing_saving": every_patch - routed}
    finally:
        model.train(was_training)
