"""SkipNet-M architecture and the shared layers' helpers."""
import torch
from torch import nn

from models.layers import InvertedResidual, count_macs, count_params, make_divisible
from models.zoo.skipnet_m import SkipNetM


def test_make_divisible_rounds_and_never_loses_more_than_10_percent():
    assert make_divisible(12) == 16
    assert make_divisible(36) == 40
    assert make_divisible(100) == 104
    for v in range(8, 400):
        assert make_divisible(v) % 8 == 0 and make_divisible(v) >= 0.9 * v


def test_count_macs_on_known_layers():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                        nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    expected = 4 * 8 * 8 * 27 + 4 * 8 * 8 * 9 + 256 * 10
    assert count_macs(net, (1, 3, 8, 8)) == expected
    net.train()
    count_macs(net, (1, 3, 8, 8))
    assert net.training            # mode restored


def test_inverted_residual_uses_residual_only_when_shapes_match():
    assert InvertedResidual(16, 64, 16, 3, 1, True, nn.ReLU).use_residual
    assert not InvertedResidual(16, 64, 24, 3, 1, False, nn.ReLU).use_residual
    assert not InvertedResidual(16, 64, 16, 3, 2, False, nn.ReLU).use_residual


def test_size_budget():
    model = SkipNetM(num_classes=10, width=0.5)
    assert 300_000 <= count_params(model) <= 1_000_000
    assert count_macs(model, (1, 3, 32, 32)) < 20_000_000


def test_skip_blocks_feed_the_later_stages():
    """Zeroing a skip block's last BN scale and shift must change the features."""
    torch.manual_seed(0)
    model = SkipNetM().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model.forward_features(x)
        for skip in model.skips:
            bn = skip.pw2[1]
            bn.weight.zero_()
            bn.bias.zero_()
        after = model.forward_features(x)
    assert len(model.skips) == 2
    assert not torch.allclose(before, after)


def test_forward_equals_head_of_features():
    torch.manual_seed(0)
    model = SkipNetM().eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_head(model.forward_features(x)))

