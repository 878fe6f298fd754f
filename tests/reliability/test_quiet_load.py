"""Loading and running a bundle from Python prints nothing when nothing is wrong: no
toolchain chatter (ExecuTorch's cpuinfo probes, LiteRT's delegate notice, torchao's CUDA
library attempts, deprecation warnings) reaches the user's stderr, for every runtime."""
from __future__ import annotations

import subprocess
import sys

import pytest


CODE = """
import sys
import numpy as np
import runtime_py
session = runtime_py.load(sys.argv[1], artifact=sys.argv[2])
x = np.zeros(session.info and session.manifest["input"]["shape"], np.float32)
session.run_raw(x)
print(session.runtime_label)
"""


@pytest.mark.parametrize("artifact", ["toy.xnnpack.fp32.pte", "toy.litert.fp32.tflite",
                                      "toy.coreml.fp16.mlpackage"])
def test_load_and_run_print_nothing(toy_bundle, artifact):
    proc = subprocess.run([sys.executable, "-W", "default", "-c", CODE, str(toy_bundle), artifact],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.strip() in ("executorch/xnnpack", "litert/xnnpack", "coreml/emulated", "coreml")
