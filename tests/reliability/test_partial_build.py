"""A model with an op one format cannot export: the other formats still build."""
from __future__ import annotations

import json
import subprocess
import sys


MODEL = '''
import torch
from torch import nn


class FFTNet(nn.Module):          # ExecuTorch 1.4.1 cannot lower abs() of a complex tensor
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.fft.rfft(self.c(x)).abs().flatten(1)[:, :3]


def make():
    torch.manual_seed(0)
    return FFTNet().eval()
'''


def test_one_format_failing_does_not_sink_the_others(tmp_path):
    (tmp_path / "fftnet.py").write_text(MODEL)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "sdk_builder.cli", "build", "--model-file",
                           f"{tmp_path / 'fftnet.py'}:make", "--input-shape", "1,3,8,8", "-r", "fp32",
                           "-o", str(out)], capture_output=True, text=True, timeout=600)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert last.startswith("error: ") and "executorch-xnnpack fp32 export failed" in last
    assert "Traceback" not in proc.stderr
    manifest = json.loads((out / "fftnet-android" / "manifest.json").read_text())
    assert [a["format"] for a in manifest["artifacts"]] == ["litert"]
    assert [s["format"] for s in manifest["skipped"]] == ["executorch-xnnpack"]
