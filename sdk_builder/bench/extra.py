"""`pocket bench --profile` and `--roofline`, and the bench's console tables."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime_py import bench as hb
from runtime_py import manifest as mf
from sdk_builder.report import share_text


def eager_op_profile(module: Any, x: np.ndarray, iters: int = 30, top: int = 12) -> dict:
    """Per-aten-op self CPU time of the eager model (torch.profiler): a proxy that shows where
    the model's work is when a runtime build cannot profile its own kernels."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    xt = torch.from_numpy(x)
    with torch.inference_mode():
        module(xt)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(iters):
                module(xt)
    rows = [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in prof.key_averages()
            if e.self_cpu_time_total > 0]
    total = sum(r[1] for r in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    ops = [{"name": k, "calls": int(n), "total_ms": ms, "avg_ms": ms / n, "share": ms / total}
           for k, ms, n in rows[:top]]
    return {"available": True, "source": "pytorch eager (torch.profiler), proxy", "ops": ops,
            "measured_on": "pytorch eager"}


def profiles(bundle: Path, entries: list[dict], x: np.ndarray, eager: Any | None,
             threads: int = 1) -> list[dict]:
    """Per artifact: the runtime's own op profile or, where the runtime build has none, why
    and the closest stand-in: the same bundle's LiteRT artifact of the same recipe (the same
    XNNPACK kernels, timed by LiteRT's profiler), else PyTorch eager."""
    from runtime_py.op_profile import profile

    own = {e["file"]: profile(e["runtime"], mf.resolve(bundle, e["file"]), x, threads=threads)
           for e in entries}
    litert_by_recipe = {a["recipe"]: a for a in mf.read(bundle)["artifacts"] if a["runtime"] == "litert"}
    eager_proxy = None
    out = []
    for e in entries:
        row = {"artifact": e["file"], **own[e["file"]], "measured_on": e["file"]}
        row["ops"] = row["ops"][:12]
        deleg = e.get("delegation") or {}
        row["delegation"] = {k: deleg.get(k) for k in ("delegated_share", "delegated_subgraphs",
                                                       "fallback_ops", "fallback_counts")
                             if deleg.get(k) is not None}
        if not row["available"]:
            twin = litert_by_recipe.get(e["recipe"]) if e["runtime"] != "litert" else None
            proxy = _twin_profile(bundle, twin, x, threads, own) if twin else None
            if proxy is None and eager is not None:
                eager_proxy = eager_proxy or eager_op_profile(eager, x)
                proxy = eager_proxy
            if proxy is not None:
                row["proxy"] = {**proxy, "ops": proxy["ops"][:12]}
        out.append(row)
    return out


def _twin_profile(bundle: Path, twin: dict, x: np.ndarray, threads: int,
                  known: dict[str, dict]) -> dict | None:
    """The LiteRT profile of `twin` (the bundle's .tflite of the same recipe), labelled as a
    stand-in; None when it cannot be profiled either."""
    from runtime_py.op_profile import profile

    prof = known.get(twin["file"]) or profile("litert", mf.resolve(bundle, twin["file"]), x,
                                              threads=threads)
    if not prof["available"]:
        return None
    return {"available": True, "ops": prof["ops"], "measured_on": twin["file"],
            "source": f"stand-in: {twin['file']} ({prof['source']}); the same model and recipe on "
                      "the XNNPACK kernels LiteRT links, not this program's own timings"}


def roofline(result: dict, macs: int) -> dict:
    """GEMM peak per thread count and, per timed candidate, achieved GFLOP/s and peak share."""
    peaks = {}
    rows = []
    for run in result["runs"]:
        n = run["threads"]
        peaks[str(n)] = hb.gemm_peak_gflops(n)
        for row in run["rows"]:
            achieved = hb.achieved_gflops(macs, row["latency"]["trimmed_mean_ms"])
            rows.append({"name": row["name"], "threads": n, "achieved_gflops": achieved,
                         "peak_gflops": peaks[str(n)]["gflops"],
                         "peak_share": achieved / peaks[str(n)]["gflops"]})
    return {"flops_per_inference": 2 * macs, "peaks": peaks, "rows": rows,
            "note": "achieved = 2 x MACs / trimmed-mean latency; peak = torch.matmul fp32 "
                    "1024x1024 with the same thread count (best of 10)"}


def _f(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def print_tables(console: Any, result: dict) -> None:
    """The run tables, the roofline and the profiles, with rich."""
    from rich.table import Table

    dev = result["deviceInfo"]
    console.print(f"[bold]{result['model']['name']}[/] on {dev['cpu']} ({dev['cores']} cores), "
                  f"{result['created']}, "
                  f"{result['settings']['iters']} interleaved iterations, warm-up "
                  f"{result['settings']['warmup']}; latency = trimmed mean (middle 80%)")
    for run in result["runs"]:
        table = Table(title=f"{run['threads']} thread(s)")
        cols = ("candidate", "recipe", "size MB", result["model"].get("metric") or "metric", "deleg", "load ms", "1st ms", "mean",
                "p50", "p90", "p99", "trim ms", "inf/s", "peak MB", "×eager", "×ORT", "×fp32",
                "run_raw +%", "run +%")
        for col in cols:
            table.add_column(col, justify="left" if col in ("candidate", "recipe") else "right")
        for r in run["rows"]:
            lat = r["latency"]
            table.add_row(
                r["name"], r.get("recipe", ""),
                _f(r.get("size_bytes") and r["size_bytes"] / 1e6, ".2f"),
                _f(r.get("accuracy"), ".3f"), share_text(r.get("delegated_share")),
                _f(r["load_ms"], ".1f"), _f(r["first_ms"], ".2f"), f"{lat['mean_ms']:.3f}",
                f"{lat['p50_ms']:.3f}", f"{lat['p90_ms']:.3f}", f"{lat['p99_ms']:.3f}",
                f"{lat['trimmed_mean_ms']:.3f}", f"{lat['throughput_ips']:.0f}",
                _f(r["peak_rss_delta_bytes"] and r["peak_rss_delta_bytes"] / 2**20, ".1f"),
                _f(r.get("speedup_vs_eager"), ".2f"), _f(r.get("speedup_vs_onnxruntime"), ".2f"),
                _f(r.get("speedup_vs_fp32"), ".2f"), _f(r.get("session_run_raw_overhead_pct"), "+.1f"),
                _f(r.get("session_overhead_pct"), "+.1f"))
        console.print(table)
        best = {r["name"]: r for r in run["rows"]}.get(run.get("best") or "")
        if best:
            vs = ", ".join(f"{best[k]:.2f}× {label}" for k, label in
                           (("speedup_vs_eager", "PyTorch eager"), ("speedup_vs_onnxruntime", "ONNX Runtime"))
                           if best.get(k) is not None)
            console.print(f"best artifact within the accuracy budget: [bold]{best['name']}[/]"
                          + (f" ({vs})" if vs else ""))
    _print_roofline(console, result.get("roofline"))
    _print_profiles(console, result.get("profiles"))
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}")


def _print_roofline(console: Any, roof: dict | None) -> None:
    if not roof:
        return
    from rich.table import Table

    peaks = ", ".join(f"{t} thread(s): {p['gflops']:.1f} GFLOP/s" for t, p in roof["peaks"].items())
    table = Table(title=f"roofline ({roof['flops_per_inference'] / 1e6:.1f} MFLOP per inference; "
                        f"fp32 GEMM peak {peaks})")
    for col in ("candidate", "threads", "achieved GFLOP/s", "share of peak"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for r in roof["rows"]:
        table.add_row(r["name"], str(r["threads"]), f"{r['achieved_gflops']:.2f}",
                      f"{r['peak_share']:.1%}")
    console.print(table)


def _print_profiles(console: Any, profs: list[dict] | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    printed: set[str] = set()      # what each table was measured on: print each once
    for p in profs or []:
        deleg = p.get("delegation") or {}
        fb = deleg.get("fallback_counts") or {o: "?" for o in deleg.get("fallback_ops", [])}
        console.print(f"[bold]{p['artifact']}[/]: delegated {share_text(deleg.get('delegated_share'))} "
                      f"in {deleg.get('delegated_subgraphs', '?')} partition(s)"
                      + (f"; not delegated: {', '.join(f'{k}×{v}' for k, v in fb.items())}" if fb else ""))
        shown = p if p["available"] else p.get("proxy")
        if not p["available"]:
            console.print(f"  no per-op profile from this runtime build: {escape(p['reason'])}")
        if not shown:
            continue
        if shown["measured_on"] in printed:
            console.print(f"  (profile of {escape(shown['measured_on'])}: shown above)")
            continue
        printed.add(shown["measured_on"])
        table = Table(title=f"top operators ({escape(shown['source'])})")
        for col in ("op", "calls", "total ms", "avg ms", "share"):
            table.add_column(col, justify="left" if col == "op" else "right")
        for op in shown["ops"][:10]:
            table.add_row(escape(op["name"]), str(op["calls"]), f"{op['total_ms']:.3f}",
                          f"{op['avg_ms']:.4f}", f"{op['share']:.1%}")
        console.print(table)
