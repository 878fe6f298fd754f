"""Per-operator profiles from the runtimes, where the installed runtime build can give one.

profile(runtime, path, example, iters, threads) -> {"available": bool, "source": str,
    "reason": str (when not available), "ops": [{"name", "calls", "total_ms", "avg_ms", "share"}]}

LiteRT: the CompiledModel profiler of libLiteRt.so, reached through its C API in a child
process (runtime_py.runtimes.litert.profiler): XNNPACK's own per-operator times plus the builtin
kernels of ops the delegate did not take.
ExecuTorch: the program is loaded with enable_etdump=True, run, and the ETDump read with
executorch.devtools.Inspector. The pip wheel of executorch 1.4.1 is built without the event
tracer (EXECUTORCH_ENABLE_EVENT_TRACER), so write_etdump_result_to_file writes nothing;
this is detected and reported, not guessed around.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime_py.errors import one_line

ET_REASON = ("the executorch pip pybindings are built without the event tracer "
             "(EXECUTORCH_ENABLE_EVENT_TRACER): enable_etdump=True runs but no ETDump is written")


def unavailable(source: str, reason: str) -> dict:
    return {"available": False, "source": source, "reason": reason, "ops": []}


def aggregate(events: list[tuple[str, float]], top: int | None = None) -> list[dict]:
    """[(op name, ms)] -> rows per name with calls, total/avg ms and share, by total time."""
    rows: dict[str, dict] = {}
    for name, ms in events:
        row = rows.setdefault(name, {"name": name, "calls": 0, "total_ms": 0.0})
        row["calls"] += 1
        row["total_ms"] += float(ms)
    total = sum(r["total_ms"] for r in rows.values()) or 1.0
    out = sorted(rows.values(), key=lambda r: -r["total_ms"])
    for r in out:
        r["avg_ms"] = r["total_ms"] / r["calls"]
        r["share"] = r["total_ms"] / total
    return out[:top] if top else out


def profile(runtime: str, path: str | Path, example: np.ndarray, iters: int = 20,
            threads: int = 1) -> dict:
    """The per-operator profile of one artifact, or why this runtime build cannot give one."""
    from runtime_py.runtimes import profile as runtime_profile

    return runtime_profile(runtime, Path(path), example, iters, threads)


def executorch_profile(path: Path, example: np.ndarray, iters: int) -> dict:
    import torch
    from executorch.extension.pybindings import _portable_lib

    source = "executorch etdump + devtools.Inspector"
    try:
        module = _portable_lib._load_for_executorch(str(path), enable_etdump=True)
        args = (torch.from_numpy(np.ascontiguousarray(example)),)
        for _ in range(iters):
            module.forward(args)
        with tempfile.TemporaryDirectory() as tmp:
            dump = Path(tmp) / "run.etdp"
            module.write_etdump_result_to_file(str(dump))
            if not dump.is_file() or dump.stat().st_size == 0:
                return unavailable(source, ET_REASON)
            return {"available": True, "source": source, "ops": _inspect(dump)}
    except Exception as exc:  # noqa: BLE001 - a profiler failure must not sink the bench
        return unavailable(source, f"profiling failed: {one_line(exc)}")


def _inspect(dump: Path) -> list[dict]:
    from executorch.devtools import Inspector

    inspector = Inspector(etdump_path=str(dump))
    events: list[tuple[str, Any]] = []
    for block in inspector.event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            if event.perf_data is not None and event.name not in ("Method::execute",):
                events.extend((event.name, ms) for ms in event.perf_data.raw)
    return aggregate(events)
