"""On a Mac, the interpreter is checked against Core ML itself: the same .mlpackage predicted
by Core ML (coremltools -> Core ML framework, CPU only so the result does not depend on
which GPU/Neural Engine the Mac has) and by runtime_py's interpreter agree at fp16 level,
for a zoo program and for a program with the op families user models bring.

Elsewhere the test is skipped: Core ML prediction exists only on macOS."""
from __future__ import annotations

import platform
import sys

import numpy as np
import pytest
import torch
from torch import nn

from sdk_builder.formats import ExportJob, get_format
from sdk_builder.quantize.parity import parity

pytestmark = [
    pytest.mark.skipif(sys.platform != "darwin" or int((platform.mac_ver()[0] or "0").split(".")[0]) < 14,
                       reason="Core ML prediction needs macOS 14+ (coremltools on Linux only "
                              "converts and serializes)"),
]


class _Families(nn.Module):
    """Attention, layer/group norm, a bilinear resize, pixel shuffle, a detection reshape."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.norm = nn.GroupNorm(4, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.ln = nn.LayerNorm(16)
        self.up = nn.Conv2d(16, 12, 1)
        self.head = nn.Conv2d(3, 6, 1)

    def forward(self, x):
        y = torch.nn.functional.gelu(self.norm(self.stem(x)))
        n, c, h, w = y.shape
        seq = self.ln(y.flatten(2).transpose(1, 2))
        seq = seq + self.attn(seq, seq, seq, need_weights=False)[0]
        y = seq.transpose(1, 2).reshape(n, c, h, w)
        y = torch.nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = torch.nn.functional.pixel_shuffle(self.up(y), 2)
        return self.head(y).view(n, 2, 3, -1).permute(0, 3, 1, 2).sigmoid()


def _both(module: nn.Module, shape: tuple[int, ...], tmp_path) -> tuple[np.ndarray, np.ndarray]:
    import coremltools as ct

    from runtime_py.runtimes.coreml.interpreter import Interpreter

    path = tmp_path / "m.mlpackage"
    get_format("coreml").export(ExportJob(module.eval(), (torch.zeros(shape),), "fp16", path))
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    apple = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
    spec = apple.get_spec()
    predicted = apple.predict({spec.description.input[0].name: x})
    apple_out = np.asarray(predicted[spec.description.output[0].name], np.float32)
    ours = Interpreter(path).run([x])[0]
    return apple_out, ours


def test_interpreter_agrees_with_core_ml_on_a_zoo_program(tmp_path):
    from models.registry import get

    spec = get("skipnet_m")
    apple, ours = _both(spec.load(), spec.input.shape, tmp_path)
    assert apple.shape == ours.shape
    assert parity(apple, ours)["snr_db"] > 40.0


def test_interpreter_agrees_with_core_ml_on_user_op_families(tmp_path):
    torch.manual_seed(0)
    apple, ours = _both(_Families(), (1, 3, 32, 32), tmp_path)
    assert apple.shape == ours.shape
    assert parity(apple, ours)["snr_db"] > 35.0
