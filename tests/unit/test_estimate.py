"""sdk_builder.quantize.estimate: the PyTorch twin whose weights are what a Core ML recipe stores."""
from __future__ import annotations

import pytest


torch = pytest.importorskip("torch")
nn = torch.nn

from runtime_py.errors import UsageError  # noqa: E402
from sdk_builder.quantize.estimate import compressed_twin, int8_scales, kmeans_1d  # noqa: E402
from sdk_builder.formats.coreml import WEIGHT_THRESHOLD  # noqa: E402


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Conv2d(16, 4, 1),          # 64 weights: at the threshold, fp16 only
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    bn = net[1]
    bn.running_mean.uniform_(-0.2, 0.2)
    bn.running_var.uniform_(0.5, 1.5)
    bn.weight.data.uniform_(0.5, 1.5)
    return net.eval()


def _weights(module: nn.Module) -> list[torch.Tensor]:
    return [m.weight.detach() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _folded_fp16(module: nn.Module) -> list[torch.Tensor]:
    return [w for w in _weights(compressed_twin(module, "fp16"))]


def test_original_untouched_and_outputs_close():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(2, 3, 8, 8)
    for recipe in ("fp16", "w8", "palettize-6bit", "palettize-4bit", "prune-50"):
        twin = compressed_twin(net, recipe)
        assert twin is not net
        assert twin.pocket_compression["folded_batchnorms"] == 1
        assert twin(x).shape == (2, 10)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    with torch.no_grad():   # fp16 + BN folding changes outputs by fp16 rounding only
        assert torch.allclose(compressed_twin(net, "fp16")(x), net(x), atol=1e-2)


def test_w8_error_within_half_a_step():
    net = _net()
    ref = _folded_fp16(net)
    got = _weights(compressed_twin(net, "w8"))
    for r, g in zip(ref, got):
        if r.numel() <= WEIGHT_THRESHOLD:
            assert torch.equal(r, g)
            continue
        scale = int8_scales(r).float()
        # half a step, plus fp16 rounding of the dequantized value
        bound = scale / 2 + r.abs().amax(dim=tuple(range(1, r.dim())), keepdim=True) * 2 ** -10
        assert torch.all((r - g).abs() <= bound)
        assert not torch.equal(r, g)


@pytest.mark.parametrize("recipe,levels", [("palettize-4bit", 16), ("palettize-6bit", 64)])
def test_palettize_leaves_at_most_2_to_n_values(recipe, levels):
    net = _net()
    for r, g in zip(_folded_fp16(net), _weights(compressed_twin(net, recipe))):
        if r.numel() > WEIGHT_THRESHOLD:
            assert 2 <= torch.unique(g).numel() <= levels
            assert (r - g).abs().max() < (r.max() - r.min()) / 4


def test_prune_zeroes_half():
    net = _net()
    for r, g in zip(_folded_fp16(net), _weights(compressed_twin(net, "prune-50"))):
        if r.numel() > WEIGHT_THRESHOLD:
            zeros = g == 0
            assert abs(zeros.float().mean().item() - 0.5) <= 1.0 / r.numel() + 1e-6
            assert torch.equal(g[~zeros], r[~zeros])              # survivors unchanged
            assert r[zeros].abs().max() <= r[~zeros].abs().min()  # the smallest went


def test_kmeans_is_deterministic_and_exact_for_few_values():
    values = torch.tensor([0.0, 0.0, 1.0, 2.0, 2.0, 5.0])
    centroids, labels = kmeans_1d(values, 16)
    assert torch.equal(centroids[labels], values)
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    a, b = kmeans_1d(x, 8), kmeans_1d(x, 8)
    assert torch.equal(a[0], b[0]) and a[0].numel() == 8


def test_unknown_recipe_is_a_usage_error():
    with pytest.raises(UsageError, match="it knows: fp16, w8"):
        compressed_twin(_net(), "int8-static")
