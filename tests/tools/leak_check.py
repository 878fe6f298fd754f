"""Resident-memory growth over many Session.run calls, per runtime.

    python tests/tools/leak_check.py BUNDLE [--calls 10000] [--warmup 1000] [--limit 5]

For every artifact of the bundle this machine can run: load a Session, warm up, record the
process's resident set size (RSS), make --calls full Session.run calls (preprocess -> runtime
-> postprocess) on varying float inputs plus one image call in 10, and record RSS again.
Fails (exit 1) if RSS grew by more than --limit percent after warm-up.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def check(bundle: Path, artifact: str, calls: int, warmup: int) -> dict:
    import runtime_py

    session = runtime_py.load(bundle, artifact=artifact)
    spec = session.manifest["input"]
    rng = np.random.default_rng(0)
    tensors = rng.standard_normal((16, *spec["shape"])).astype(np.float32)
    h, w = (spec["shape"][2], spec["shape"][3]) if spec["layout"] == "NCHW" else spec["shape"][1:3]
    images = rng.integers(0, 256, (4, h * 2, w * 2, 3), dtype=np.uint8)

    def call(i: int) -> None:
        session.run(images[i % 4] if i % 10 == 0 else tensors[i % 16])

    for i in range(warmup):
        call(i)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for i in range(calls):
        call(i)
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_bytes()
    return {"artifact": artifact, "calls": calls, "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1), "growth_pct": round(100 * (after - before) / before, 3),
            "growth_bytes_per_call": round((after - before) / calls, 1),
            "us_per_call": round(1e6 * seconds / calls, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=1_000)
    ap.add_argument("--limit", type=float, default=5.0, help="max RSS growth in percent")
    args = ap.parse_args()
    from runtime_py import manifest as mf
    from runtime_py.runtimes import can_run

    rows = [check(args.bundle, a["file"], args.calls, args.warmup)
            for a in mf.read(args.bundle)["artifacts"] if can_run(a)]
    print(json.dumps(rows, indent=2))
    bad = [r["artifact"] for r in rows if r["growth_pct"] > args.limit]
    if bad:
        print(f"RSS grew more than {args.limit}% for: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
