"""SkipNet-M captured by torch.export with a static shape computes what eager does."""
import torch

from models.zoo.skipnet_m import SkipNetM


def test_torch_export_static_shape_matches_eager():
    torch.manual_seed(0)
    model = SkipNetM().eval()
    x = torch.randn(1, 3, 32, 32)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), atol=1e-5, rtol=1e-5)
