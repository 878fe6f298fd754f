"""runtime_py.runtimes.litert.profiler: the LiteRT C-API op profiler, run in a child process.

These tests need no model and take about a second; tests/export/test_litert_profiler_runs.py
profiles a real model converted with litert_torch against the ai_edge_litert Interpreter."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from runtime_py.runtimes.litert import profiler as lp

X = np.zeros((1, 3, 32, 32), np.float32)


def _assert_unavailable(result: dict, *words: str) -> None:
    assert result["available"] is False and result["ops"] == []
    assert result["source"] == lp.SOURCE
    assert result["reason"] and "\n" not in result["reason"]
    for word in words:
        assert word in result["reason"], result["reason"]


def test_import_loads_no_runtime():
    code = ("import sys, runtime_py.runtimes.litert.profiler; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ai_edge_litert', 'litert_torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("data, words", [
    (b"", ["LiteRtCreateModelFromFile", "null/empty"]),
    (b"not a flatbuffer at all", ["LiteRtCreateModelFromFile", "TFL3"]),
    (b"\x18\x00\x00\x00TFL3" + bytes(range(256)) * 8, ["LiteRtCreateModelFromFile"]),
], ids=["empty", "garbage", "bad-flatbuffer"])
def test_broken_files_are_unavailable_with_the_runtimes_reason(tmp_path, data, words):
    path = tmp_path / "broken.tflite"
    path.write_bytes(data)
    _assert_unavailable(lp.profile_litert(path, X, iters=2), *words)


def test_bad_arguments_are_refused_before_any_child(tmp_path):
    _assert_unavailable(lp.profile_litert(tmp_path / "missing.tflite", X), "no such model file")
    (tmp_path / "m.tflite").write_bytes(b"x")
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X.astype(np.float64)), "float64")
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X, iters=0), "iters")


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


def test_a_hung_child_is_reported(monkeypatch, tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])
    monkeypatch.setattr(lp.subprocess, "run", hang)
    _assert_unavailable(lp.profile_litert(tmp_path / "m.tflite", X), "did not finish")


def test_whole_delegate_events_are_not_kept():
    assert lp._is_delegate_node(2, b"DELEGATE") and lp._is_delegate_node(2, b"TfLiteXNNPackDelegate")
    assert not lp._is_delegate_node(2, b"CONV_2D")
    assert not lp._is_delegate_node(8, b"Convolution (NHWC, F32) IGEMM")
    assert 1 not in lp.KEPT_EVENT_TYPES and 16 not in lp.KEPT_EVENT_TYPES

