"""Small models whose float maths takes integer operands (Python ints that quantizers turn into
int64 constants, arange grids, argmax indices), for tests/unit/test_quantize_dtypes.py and
tests/export/test_quantize_dtypes_export.py; the calibration data and LiteRT's quantizer."""
from __future__ import annotations

import torch
from torch import nn

SHAPE = (1, 3, 8, 8)


class ScalarMaths(nn.Module):
    """A YOLO-style decode: Python int operands of float maths (litert-torch's quantizer
    turns them into int64 constants before annotating)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv(x).sigmoid() * 2 - 0.5) * 8


class GridScaled(nn.Module):
    """int64 arithmetic on a torch.arange grid feeds a float mul (the graph is quantized
    as captured: no canonical pass folds the grid first)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = torch.arange(x.shape[-1]) * 2 + 1
        return self.conv(x).sigmoid() * columns


class IndexScaled(nn.Module):
    """An int64 arithmetic node computed from the input feeds a float mul (an argmax near a
    tie may flip once x is int8, so only the PyTorch twin is compared)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x.argmax(dim=1, keepdim=True) + 1
        return self.conv(x).sigmoid() * index


MODELS = [ScalarMaths, GridScaled, IndexScaled]
EXPORTED = [ScalarMaths, GridScaled]       # IndexScaled: an argmax tie may flip in int8


def litert_quantizer():
    from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                      get_symmetric_quantization_config)

    return PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def calibration() -> list[torch.Tensor]:
    return [torch.randn(8, *SHAPE[1:]) for _ in range(2)]
