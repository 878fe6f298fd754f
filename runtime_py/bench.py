"""Benchmark harness: interleaved latency runs, statistics, memory, device info, GEMM peak.

The same protocol the phone apps follow:
  1. each candidate is loaded (timed), runs once (first inference, timed) and is warmed up
     (not timed), one after another;
  2. then the timed iterations run round-robin: each iteration calls every candidate once,
     in a freshly shuffled (seeded) order, so drift (thermal, other processes) and the
     cache damage a heavy neighbour leaves behind hit all candidates equally;
  3. statistics per candidate: mean, p50/p90/p99, trimmed mean (middle 80%), throughput.

Never imports sdk_builder or models. Result records follow schemas/bench.schema.json.
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Sequence

import numpy as np

SCHEMA_VERSION = 1
TRIM = 0.10            # trimmed mean drops this share at each end (middle 80% kept)


# ---------------------------------------------------------------- statistics
def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between order statistics."""
    if not len(samples):
        raise ValueError("percentile of no samples")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def trimmed_mean(samples: Sequence[float], trim: float = TRIM) -> float:
    """Mean of the samples left after dropping floor(n*trim) from each end of the sorted list."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if not len(x):
        raise ValueError("trimmed mean of no samples")
    k = int(len(x) * trim)
    return float(x[k:len(x) - k].mean())


def summarize(samples_s: Sequence[float]) -> dict:
    """Latency statistics in milliseconds and throughput (inferences/s, from the trimmed mean)."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    tmean = trimmed_mean(ms)
    return {"n": int(len(ms)), "mean_ms": float(ms.mean()), "p50_ms": percentile(ms, 50),
            "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99),
            "trimmed_mean_ms": tmean, "min_ms": float(ms.min()), "max_ms": float(ms.max()),
            "std_ms": float(ms.std()), "throughput_ips": 1e3 / tmean if tmean > 0 else 0.0}


# ---------------------------------------------------------------- memory
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int | None:
    """Current resident set size of this process (Linux), else None."""
    kb = _status_kb("VmRSS")
    return kb * 1024 if kb is not None else None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so a later peak_rss_bytes() is this phase's."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """Peak resident set size since start (or since reset_peak_rss)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb * 1024
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (ImportError, OSError):
        return None


# ---------------------------------------------------------------- candidates
@dataclass
class Candidate:
    """One thing to time: `call()` runs one inference on a fixed, ready input."""

    name: str
    call: Callable[[], Any]
    meta: dict = field(default_factory=dict)     # backend (see records), recipe, runtime, file, kind ...
    load_ms: float | None = None
    first_ms: float | None = None
    peak_rss_delta_bytes: int | None = None      # peak RSS growth while loading + first runs


def prepare(name: str, load: Callable[[], Callable[[], Any]], warmup: int,
            meta: dict | None = None, clock: Callable[[], float] = time.perf_counter) -> Candidate:
    """Load a candidate (timed), run it once (timed) and `warmup` more times (not timed).

    `load()` returns the zero-argument inference call. Peak memory is the growth of the
    process's peak RSS over its RSS before loading (the mark is reset first where Linux
    allows it, so earlier candidates do not hide this one's peak)."""
    reset_peak_rss()
    before = rss_bytes()
    t0 = clock()
    call = load()
    t1 = clock()
    call()
    t2 = clock()
    for _ in range(warmup):
        call()
    peak = peak_rss_bytes()
    delta = max(0, peak - before) if peak is not None and before is not None else None
    return Candidate(name, call, dict(meta or {}), (t1 - t0) * 1e3, (t2 - t1) * 1e3, delta)


def run_interleaved(candidates: Sequence[Candidate], iters: int, block: int = 1,
                    order: str = "shuffle", seed: int = 0,
                    clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call for each candidate: `iters` calls each, taken in rounds where every
    candidate gets one turn of `block` consecutive calls.

    order="shuffle" (default) draws each round's order from a seeded RNG, so no candidate
    always follows the same other one: a heavy neighbour (PyTorch eager touches far more
    memory) then slows everybody's next call equally instead of always the same victim's.
    order="rotate" keeps one cyclic order and rotates its start. block=1 is strict one-call
    interleaving; a larger block keeps a candidate's caches warm within its turn
    (steady state, as in a camera loop) while drift still hits all candidates alike."""
    import random

    if iters < 1 or block < 1:
        raise ValueError("iters and block must be at least 1")
    if order not in ("shuffle", "rotate"):
        raise ValueError(f"order must be 'shuffle' or 'rotate', not {order!r}")
    rng = random.Random(seed)
    times: dict[str, list[float]] = {c.name: [] for c in candidates}
    n = len(candidates)
    rounds = -(-iters // block)
    for i in range(rounds):
        calls = min(block, iters - i * block)
        if order == "shuffle":
            turn = list(candidates)
            rng.shuffle(turn)
        else:
            turn = [candidates[(i + j) % n] for j in range(n)]
        for c in turn:
            record = times[c.name].append
            for _ in range(calls):
                t0 = clock()
                c.call()
                record(clock() - t0)
    return times


def ratios(stats: dict[str, dict], baseline: str, key: str = "trimmed_mean_ms") -> dict[str, float]:
    """Speed-up of every candidate over `baseline` (baseline latency / candidate latency)."""
    base = stats[baseline][key]
    return {name: base / s[key] for name, s in stats.items() if s[key] > 0}


# ---------------------------------------------------------------- threads
def set_threads(runtime: str, threads: int) -> None:
    """Pin the process-wide pools a runtime (or "torch", the eager baseline) uses. LiteRT and
    ONNX Runtime take their thread count when a model is opened instead."""
    if runtime == "torch":
        import torch

        torch.set_num_threads(threads)
        return
    from runtime_py.runtimes import set_threads as set_runtime_threads

    set_runtime_threads(runtime, threads)


# ---------------------------------------------------------------- Session overhead
def runner_raw_call(runner: Any, inputs: list[np.ndarray]) -> Callable[[], Any] | None:
    """The bare runtime call of an open runtime_py runner, on the *same* loaded model (two
    loads of one model can differ by several percent): no checks, no conversions, no
    post-processing. None for a runner without one."""
    raw_call = getattr(runner, "raw_call", None)
    return raw_call(list(inputs)) if raw_call is not None else None


def session_overhead(session: Any, inputs: tuple, iters: int, warmup: int = 10,
                     block: int = 20) -> dict | None:
    """Session.run and Session.run_raw against the bare runtime call of the same loaded model,
    interleaved in warm turns of `block` calls: {"raw_ms", "run_raw_ms", "run_ms",
    "run_raw_overhead_pct", "run_overhead_pct"} (trimmed means), or None. `inputs`: one
    array per model input."""
    raw = runner_raw_call(getattr(session, "_runner", None), inputs)
    if raw is None:
        return None
    cands = [prepare("raw", lambda: raw, warmup),
             prepare("run_raw", lambda: (lambda: session.run_raw(*inputs)), warmup),
             prepare("run", lambda: (lambda: session.run(*inputs)), warmup)]
    times = run_interleaved(cands, iters, block=block)
    ms = {name: trimmed_mean(t) * 1e3 for name, t in times.items()}
    return {"raw_ms": ms["raw"], "run_raw_ms": ms["run_raw"], "run_ms": ms["run"],
            "run_raw_overhead_pct": 100.0 * (ms["run_raw"] / ms["raw"] - 1.0),
            "run_overhead_pct": 100.0 * (ms["run"] / ms["raw"] - 1.0)}


# ---------------------------------------------------------------- roofline
def gemm_peak_gflops(threads: int, size: int = 1024, repeats: int = 10) -> dict:
    """This machine's fp32 GEMM rate with `threads` threads (torch.matmul, best of `repeats`):
    {"gflops", "size", "threads", "seconds"}."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.rand(size, size, generator=gen)
        b = torch.rand(size, size, generator=gen)
        torch.matmul(a, b)                       # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return {"gflops": 2.0 * size ** 3 / best / 1e9, "size": size, "threads": threads, "seconds": best}


def achieved_gflops(macs: int, latency_ms: float) -> float:
    """2 x MACs per inference over the latency, in GFLOP/s."""
    return 2.0 * macs / (latency_ms * 1e-3) / 1e9 if latency_ms > 0 else 0.0


# ---------------------------------------------------------------- device info
def device_info() -> dict:
    """CPU model, cores, memory and OS of this machine (ExecuTorch's `deviceInfo` fields)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return {"device": platform.node() or "unknown", "arch": platform.machine(), "cpu": cpu,
            "cores": os.cpu_count() or 1, "memory_bytes": mem, "os": platform.system(),
            "os_version": platform.release(), "python": platform.python_version()}


def runtime_versions(dists: Sequence[str] | None = None) -> dict[str, str]:
    """Installed versions of every registered runtime (and torch, onnxruntime, numpy)."""
    from runtime_py.runtimes import RUNTIMES

    if dists is None:
        dists = ("torch", *(d for r in RUNTIMES for d in r.distributions), "onnxruntime", "numpy")
    out = {}
    for d in dists:
        try:
            out[d] = metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return out


# ---------------------------------------------------------------- records
METRICS = (("load_ms", "load_time", "ms"), ("first_ms", "first_inference", "ms"),
           ("mean_ms", "latency_mean", "ms"), ("p50_ms", "latency_p50", "ms"),
           ("p90_ms", "latency_p90", "ms"), ("p99_ms", "latency_p99", "ms"),
           ("trimmed_mean_ms", "latency_trimmed_mean", "ms"),
           ("throughput_ips", "throughput", "inferences/s"),
           ("peak_rss_delta_bytes", "peak_memory_delta", "bytes"))


def records(model: str, candidate: Candidate, stats: dict, threads: int,
            device: dict, extra: dict | None = None) -> list[dict]:
    """Flat benchmark records (one per metric) in ExecuTorch's benchmark-record style.
    `benchmarkModel.backend` keeps ExecuTorch's benchmark-app field name; it holds
    meta["backend"], the artifact's file-name tag (xnnpack, litert, coreml) or a
    reference's name (pytorch-eager, onnxruntime-cpu), not our word for a runtime."""
    meta = candidate.meta
    values = dict(stats)
    values.update({"load_ms": candidate.load_ms, "first_ms": candidate.first_ms,
                   "peak_rss_delta_bytes": candidate.peak_rss_delta_bytes})
    values.update(extra or {})
    out = []
    for key, metric, unit in METRICS + tuple((k, k, u) for k, u in _EXTRA_UNITS.items()):
        if values.get(key) is None:
            continue
        out.append({"benchmarkModel": {"name": model, "backend": meta.get("backend", candidate.name),
                                       "quantization": meta.get("recipe", "fp32")},
                    "artifact": meta.get("file", candidate.name), "runtime": meta.get("runtime", ""),
                    "recipe": meta.get("recipe", "fp32"), "metric": metric,
                    "actualValue": float(values[key]), "unit": unit, "threads": threads,
                    "deviceInfo": device})
    return out


_EXTRA_UNITS = {"speedup_vs_eager": "x", "speedup_vs_onnxruntime": "x", "speedup_vs_fp32": "x",
                "session_overhead_pct": "%", "session_run_raw_overhead_pct": "%", "achieved_gflops": "GFLOP/s", "peak_share": "ratio"}
