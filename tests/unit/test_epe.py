"""EPE routing (models.zoo._epe), EDANet and EPE-EDANet: exact ranks, ties, put-back, MACs."""
import math

import pytest
import torch
from torch import nn

from models.zoo._epe import (EPE, FLOAT_MODULES, PatchGather, PatchScatter, QuantBarrier,
                        exact_identity, executed_macs, group_sizes, image_to_patches,
                        patches_to_image, permutation_matrix)
from models.layers import count_macs
from models.zoo.edanet import EDANet
from models.zoo.epe_edanet import EPEEDANet


MEAN, STD = 0.5, 0.25          # the scenes' normalisation: (x/255 - 0.5) / 0.25


def _normalise(pixels01: torch.Tensor) -> torch.Tensor:
    return (pixels01 - MEAN) / STD


def _tied_scenes(batch: int, seed: int) -> torch.Tensor:
    """Images whose patches are copies of a few flat and a few textured patches: many
    exactly equal entropies, flat and non-flat."""
    gen = torch.Generator().manual_seed(seed)
    palette = torch.rand(6, 3, 16, 16, generator=gen)
    palette[:3] = palette[:3, :, :1, :1]                  # three flat patches
    choice = torch.randint(0, 6, (batch, 8, 8), generator=gen)
    img = palette[choice]                                 # [B, 8, 8, 3, 16, 16]
    img = img.permute(0, 3, 1, 4, 2, 5).reshape(batch, 3, 128, 128)
    return _normalise((img * 255).round() / 255)


def _reference(entropy: torch.Tensor, sizes: tuple[int, int, int]) -> tuple:
    """Ranks and routes by a stable descending argsort (ties: lower index first)."""
    order = torch.argsort(-entropy, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(entropy.shape[1]).expand_as(order))
    routes = torch.zeros_like(entropy)
    routes[rank < sizes[0] + sizes[1]] = 1.0
    routes[rank < sizes[0]] = 2.0
    return rank, routes


@pytest.fixture(scope="module")
def epe() -> EPE:
    torch.manual_seed(0)
    return EPE().eval()


@pytest.mark.parametrize("kind", ["normal", "tied"])
def test_routes_equal_a_stable_argsort_reference(epe, kind):
    for seed in range(3):
        x = torch.randn(4, 3, 128, 128, generator=torch.Generator().manual_seed(seed)) \
            if kind == "normal" else _tied_scenes(4, seed)
        with torch.no_grad():
            routes, rank, entropy = epe.route(x)
        ref_rank, ref_routes = _reference(entropy, epe.sizes)
        if kind == "tied":
            assert len(torch.unique(entropy[0])) < 10     # many exact ties really occur
        assert torch.equal(rank.long(), ref_rank)
        assert torch.equal(routes, ref_routes)


def test_group_counts_are_13_26_25(epe):
    assert group_sizes(64) == (13, 26, 25)
    with torch.no_grad():
        _, routes = epe(torch.cat([torch.randn(2, 3, 128, 128), _tied_scenes(2, 7)]))
    assert routes.dtype == torch.float32 and routes.shape == (4, 64)
    for row in routes:
        assert [(row == code).sum().item() for code in (2.0, 1.0, 0.0)] == [13, 26, 25]


def test_all_flat_image_ties_go_by_patch_index(epe):
    x = _normalise(torch.full((1, 3, 128, 128), 0.3))
    with torch.no_grad():
        routes, rank, _ = epe.route(x)
    assert torch.equal(rank[0], torch.arange(64.0))
    assert torch.equal(routes[0], torch.tensor([2.0] * 13 + [1.0] * 26 + [0.0] * 25))


def test_put_back_is_the_exact_inverse_of_gather():
    sizes = group_sizes(64)
    gather, scatter = PatchGather(16, sizes), PatchScatter((8, 8), sizes)
    x = torch.randn(3, 3, 128, 128) * 1e3
    rank = torch.stack([torch.randperm(64).float() for _ in range(3)])
    groups = gather(x, rank)                          # identity encoders: the patches
    assert [g.shape[0] for g in groups] == [3 * s for s in sizes]
    assert torch.equal(scatter(groups, rank), x)


def test_gathered_patches_are_in_rank_order():
    sizes = group_sizes(64)
    x = torch.randn(1, 3, 128, 128)
    rank = torch.randperm(64).float()[None]
    large = PatchGather(16, sizes)(x, rank)[0]
    patches = image_to_patches(x, 16)[0]
    first = int(torch.nonzero(rank[0] == 0))
    assert torch.equal(large[0].reshape(-1), patches[first])


def test_patch_layout_round_trip_and_raster_order():
    x = torch.randn(2, 3, 128, 128)
    p = image_to_patches(x, 16)
    assert p.shape == (2, 64, 768)
    assert torch.equal(p[1, 8 * 2 + 5].reshape(3, 16, 16), x[1, :, 32:48, 80:96])
    assert torch.equal(patches_to_image(p, 3, 16, (8, 8)), x)


def test_permutation_matrix_is_a_true_permutation():
    rank = torch.stack([torch.randperm(64).float() for _ in range(4)])
    perm = permutation_matrix(rank)
    assert set(perm.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(perm.sum(1), torch.ones(4, 64))
    assert torch.equal(perm.sum(2), torch.ones(4, 64))
    assert torch.equal(perm @ torch.arange(64.0), torch.argsort(rank, dim=1).float())


def test_entropy_of_flat_and_uniform_patches(epe):
    bins = epe.entropy.bins
    centre = _normalise(torch.full((1, 3, 128, 128), 5 / (bins - 1)))
    between = _normalise(torch.full((1, 3, 128, 128), 5.5 / (bins - 1)))
    levels = torch.arange(256) % bins / (bins - 1)          # every bin centre 16 times
    uniform = _normalise(levels.reshape(16, 16).repeat(8, 8).expand(1, 3, 128, 128))
    with torch.no_grad():
        e_centre, e_between, e_uniform = (epe.entropy(x) for x in (centre, between, uniform))
    assert e_centre.abs().max() < 1e-5
    assert torch.allclose(e_between, torch.full_like(e_between, math.log(2)), atol=1e-4)
    assert torch.allclose(e_uniform, torch.full_like(e_uniform, math.log(bins)), atol=1e-4)


def test_exact_identity_and_barrier_are_bit_exact():
    x = torch.randn(1000) * torch.logspace(-30, 30, 1000)
    assert torch.equal(exact_identity(x), x)
    assert torch.equal(QuantBarrier()(x), x)


def test_every_routing_module_is_kept_float(epe):
    routing = [m for name, m in epe.named_children() if name != "encoders"]
    assert all(isinstance(m, FLOAT_MODULES) for m in routing)
    assert not any(isinstance(m, FLOAT_MODULES) for m in epe.encoders.modules())


def test_executed_macs_count_routed_patches_and_routing():
    model = EPEEDANet()
    macs = executed_macs(model, (1, 3, 128, 128))
    parts = macs["backbone"] + macs["fusion"] + macs["routing"]["total"] + \
        sum(e["macs"] for e in macs["encoders"].values())
    assert parts == macs["total"] == count_macs(model, (1, 3, 128, 128))
    assert [macs["encoders"][k]["patches"] for k in ("large", "medium", "small")] == [13, 26, 25]
    assert macs["routing"]["gather"] == 64 * 64 * 768          # N^2 D one-hot bmm
    assert macs["total"] < macs["all_encoders_every_patch"]["total"]
    assert macs["routing_saving"] > 0
    assert macs["backbone"] == count_macs(EDANet(), (1, 3, 128, 128))


def test_count_macs_counts_bmm_and_inner_batches_per_sample():
    class Patches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1, bias=False)

        def forward(self, x):
            p = self.conv(x.reshape(-1, 3, 2, 2))              # 4 patches per sample
            return torch.bmm(p.reshape(x.shape[0], 4, 16), torch.ones(x.shape[0], 16, 5))

    expected = 4 * (4 * 4 * 3) + 4 * 16 * 5
    assert count_macs(Patches(), (1, 3, 4, 4)) == expected
    assert count_macs(Patches(), (3, 3, 4, 4)) == expected


def test_models_shapes_params_and_routes_output():
    torch.manual_seed(0)
    eda, model = EDANet().eval(), EPEEDANet().eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert eda(x).shape == (2, 6, 128, 128)
        assert eda.forward_features(x).shape == (2, eda.num_features, 16, 16)
        logits, routes = model(x)
        again, entropy = model.routes_and_entropies(x)
    assert logits.shape == (2, 6, 128, 128) and routes.shape == (2, 64)
    assert torch.equal(routes, again) and entropy.shape == (2, 64)
    p_eda = sum(p.numel() for p in eda.parameters())
    p_epe = sum(p.numel() for p in model.parameters())
    assert 0.05 < p_epe / p_eda - 1 < 0.15                   # paper: ~+10% parameters
