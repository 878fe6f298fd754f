"""runtime_py.runtimes.litert.profiler: the LiteRT C-API op profiler, run in a child process.

The unit tests need no model and take about a second; the export test converts a small conv
net with litert_torch (~10 s) and checks the profile against the ai_edge_litert Interpreter."""
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


def _assert_unavailable(result: dict, *words: str) -> None:
    assert result["available"] is False and result["ops"] == []
    assert result["source"] == lp.SOURCE
    assert result["reason"] and "\n" not in result["reason"]
    for word in words:
        assert word in result["reason"], result["reason"]


# ---------------------------------------------------------------------------- unit (no model)
@pytest.mark.unit
def test_import_loads_no_runtime():
    code = ("import sys, runtime_py.runtimes.litert.profiler; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ai_edge_litert', 'litert_torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.unit
@pytest.mark.parametrize("data, words", [
    (b"", ["LiteRtCreateModelFromFile", "null/empty"]),
    (b"not a flatbuffer at all", ["LiteRtCreateModelFromFile", "TFL3"]),
    (b"\x18\x00\x00\x00TFL3" + bytes(range(256)) * 8, ["LiteRtCreateModelFromFile"]),
], ids=["empty", "garbage", "bad-flatbuffer"])
def test_broken_files_are_unavailable_with_the_runtimes_reason(tmp_path, data, words):
    path = tmp_path / "broken.tflite"
    path.write_bytes(data)
    _assert_unavailable(lp.profile_litert(path, X, iters=2), *words)


@pytest.mark.unit
def test_bad_arguments_are_refused_before_any_child(tmp_path):
    _assert_unavailable(lp.profile_litert(tmp_path / "missing.tflite", X), "no such model file")
    (tmp_path / "m.tflite").write_bytes(b"x")
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X.astype(np.float64)), "float64")
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X, iters=0), "iters")


@pytest.mark.unit
@pytest.mark.parametrize("rc, stderr, words", [
    (-11, "INFO: loading\n", ["crashed (SIGSEGV)"]),
    (-6, "ERROR: Model provided has model identifier 'ab\n', should be 'TFL3'\nINFO: x\n",
     ["crashed (SIGABRT)", "should be 'TFL3'"]),
    (1, "Traceback (most recent call last):\n  ...\nOSError: libLiteRt.so: cannot open\n",
     ["exited with 1", "OSError: libLiteRt.so"]),
    (0, "", ["printed no JSON"]),
])
def test_child_failures_become_one_line_reasons(monkeypatch, tmp_path, rc, stderr, words):
    (tmp_path / "m.tflite").write_bytes(b"x")
    done = subprocess.CompletedProcess([], rc, stdout="", stderr=stderr)
    monkeypatch.setattr(lp.subprocess, "run", lambda *a, **k: done)
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X), *words)


@pytest.mark.unit
def test_a_hung_child_is_reported(monkeypatch, tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])
    monkeypatch.setattr(lp.subprocess, "run", hang)
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X), "did not finish")


@pytest.mark.unit
def test_whole_delegate_events_are_not_kept():
    assert lp._is_delegate_node(2, b"DELEGATE") and lp._is_delegate_node(2, b"TfLiteXNNPackDelegate")
    assert not lp._is_delegate_node(2, b"CONV_2D")
    assert not lp._is_delegate_node(8, b"Convolution (NHWC, F32) IGEMM")
    assert 1 not in lp.KEPT_EVENT_TYPES and 16 not in lp.KEPT_EVENT_TYPES


# ---------------------------------------------------------------------- export (a real model)
@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory) -> Path:
    """A float32 conv net on 1x3x32x32 converted by litert_torch (no PAD: one XNNPACK op per op)."""
    pytest.importorskip("litert_torch")
    path = tmp_path_factory.mktemp("litert_prof") / "small.tflite"
    proc = subprocess.run([sys.executable, "-c", SMALL_NET, str(path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


@pytest.mark.export
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


@pytest.mark.export
def test_a_truncated_real_model_never_crashes_the_caller(small_tflite, tmp_path):
    data = small_tflite.read_bytes()
    for frac in (0.3, 0.6, 0.9):
        path = tmp_path / f"cut{frac}.tflite"
        path.write_bytes(data[:int(len(data) * frac)])
        _assert_unavailable(lp.profile_litert(path, X, iters=2))
