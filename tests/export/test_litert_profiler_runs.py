"""runtime_py.runtimes.litert.profiler on a real model: a small conv net converted with
litert_torch (~10 s), profiled through the C API and checked against the ai_edge_litert
Interpreter (op count, timings, the output buffers); a truncated copy never crashes the caller.
The tests needing no model are tests/unit/test_litert_profiler.py."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from runtime_py.runtimes.litert import profiler as lp

X = np.zeros((1, 3, 32, 32), np.float32)

SMALL_NET = r"""
import sys, torch, litert_torch
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Hardswish(),
                    nn.Conv2d(16, 32, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()
litert_torch.convert(net, (torch.zeros(1, 3, 32, 32),)).export(sys.argv[1])
"""

C_API_OUTPUT = r"""
import json, sys, numpy as np
from runtime_py.runtimes.litert.profiler import _measure
ops, outs = _measure(sys.argv[1], np.load(sys.argv[2]), 3, 1)
print(json.dumps(outs[0].tolist()))
"""


@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory) -> Path:
    """A float32 conv net on 1x3x32x32 converted by litert_torch (no PAD: one XNNPACK op per op)."""
    pytest.importorskip("litert_torch")
    path = tmp_path_factory.mktemp("litert_prof") / "small.tflite"
    proc = subprocess.run([sys.executable, "-c", SMALL_NET, str(path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


def test_real_profile_matches_the_interpreter(small_tflite, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    interp = Interpreter(model_path=str(small_tflite), num_threads=1)
    interp.allocate_tensors()
    n_ops = sum(op["op_name"] != "DELEGATE" for op in interp._get_ops_details())
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - start)
    latency_ms = 1000 * float(np.median(times))
    reference = interp.get_tensor(interp.get_output_details()[0]["index"])

    iters = 20
    result = lp.profile_litert(small_tflite, x, iters=iters, threads=1)
    assert result["available"], result.get("reason")
    ops = result["ops"]
    assert len(ops) == iters * n_ops                           # one event per op per invocation
    names = {name for name, _ in ops}
    assert any("Conv" in name for name in names), names
    assert not names & {"Invoke", "DELEGATE"}
    per_run = [sum(ms for _, ms in ops[i * n_ops:(i + 1) * n_ops]) for i in range(iters)]
    assert 0 < float(np.median(per_run)) < 10 * latency_ms, (per_run, latency_ms)

    # the C-API buffers are wired right: same output as the Interpreter for the same input
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", C_API_OUTPUT, str(small_tflite), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.array(json.loads(proc.stdout)), reference, atol=1e-5)


def test_a_truncated_real_model_never_crashes_the_caller(small_tflite, tmp_path):
    data = small_tflite.read_bytes()
    for frac in (0.3, 0.6, 0.9):
        path = tmp_path / f"cut{frac}.tflite"
        path.write_bytes(data[:int(len(data) * frac)])
        result = lp.profile_litert(path, X, iters=2)
        assert result["available"] is False and result["ops"] == [] and result["source"] == lp.SOURCE
        assert result["reason"] and "\n" not in result["reason"], result["reason"]
