"""Feed mutated artifact bytes to each runtime loader and count crashes.

    python tests/tools/fuzz_loaders.py BUNDLE_OR_ARTIFACTS... [--cases 300] [--seed 0]

Each seed artifact (.pte / .tflite; for an .mlpackage its model spec) is mutated (bit flips anywhere or in the header region,
byte runs overwritten, truncation, random bytes behind a valid file identifier) and loaded
with runtime_py (check_integrity=False) and, when it loads, run once on zeros (.mlpackage:
read with the Core ML structure reader, as `pocket info`/`verify` do on Linux). Workers are
subprocesses: a native crash (signal) is recorded against the case that caused it, and the
worker is restarted on the next case. Outcome per case: "error" (clean PocketError),
"ran" (the runtime accepted it: only the sha256 check can catch such corruption),
"other" (a non-PocketError Python exception: a bug) or "crash" (the process died).
Every crashing input is then loaded again the way users load it (runtime_py.load with its
defaults, whose probe runs an unchecked artifact in a child process first): "probe_caught"
counts those that became a clean error there.
Prints a JSON summary; exit status 1 if any case was "other", or crashed even with the probe.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.tools.probe import probe  # noqa: E402

SUFFIXES = (".pte", ".tflite", ".mlpackage")
def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of an artifact's bytes: (kind, new bytes)."""
    kind = rng.choice(["flip", "flip-head", "run", "truncate", "random-body", "shuffle-block"])
    b = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 64)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "flip-head":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(min(len(b), 65536))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "run":
        start = rng.randrange(len(b))
        b[start:start + rng.randint(1, 256)] = bytes([rng.choice([0, 0xFF, rng.randrange(256)])]) * rng.randint(1, 256)
    elif kind == "truncate":
        b = b[:rng.randrange(len(b))]
    elif kind == "random-body":
        b = b[:8] + bytearray(rng.randbytes(rng.randint(0, 4096)))
    else:
        i, j = rng.randrange(len(b)), rng.randrange(len(b))
        n = rng.randint(4, 512)
        b[i:i + n], b[j:j + n] = b[j:j + n], b[i:i + n]
    return kind, bytes(b)


def seeds(args: list[str]) -> list[Path]:
    found = []
    for a in map(Path, args):
        found += (sorted(p for p in a.iterdir() if p.suffix in SUFFIXES)
                  if a.is_dir() and a.suffix != ".mlpackage" else [a])
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", help="bundle folders or .pte/.tflite files")
    ap.add_argument("--cases", type=int, default=300, help="mutations per seed artifact")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="copy crashing inputs here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    summary = {}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for seed_path in seeds(args.inputs):
            package = seed_path.suffix == ".mlpackage"
            spec_file = next(seed_path.rglob("model.mlmodel")) if package else seed_path
            data = spec_file.read_bytes()
            paths, kinds = [], []
            for n in range(args.cases):
                kind, blob = mutate(data, rng)
                p = Path(tmp) / f"case{n}{seed_path.suffix}"
                if package:   # a copy of the package with its model spec mutated
                    shutil.copytree(seed_path, p)
                    (p / spec_file.relative_to(seed_path)).write_bytes(blob)
                else:
                    p.write_bytes(blob)
                paths.append(p)
                kinds.append(kind)
            # .pte/.tflite: load + run in the runtime; .mlpackage: the structure reader (Linux)
            mode = "describe" if package else False
            outcomes = [o if o in ("ran", "error") else f"{o}:{m}" for o, m in probe([(p, mode) for p in paths])]
            counts = Counter(o.split(":")[0] for o in outcomes)
            crashed = [p for p, o in zip(paths, outcomes) if o.startswith("crash")]
            if crashed and not package:
                guarded = probe([(p, "protected") for p in crashed])
                counts["probe_caught"] = sum(o == "error" for o, _ in guarded)
                counts["crash_despite_probe"] = sum(o != "error" for o, _ in guarded)
            bad = [{"kind": k, "outcome": o} for k, o in zip(kinds, outcomes)
                   if o.startswith(("crash", "other"))]
            if args.keep and bad:
                args.keep.mkdir(parents=True, exist_ok=True)
                for p, o in zip(paths, outcomes):
                    if o.startswith(("crash", "other")):
                        (args.keep / f"{seed_path.stem}.{p.name}").write_bytes(p.read_bytes())
            summary[seed_path.name] = {"cases": len(outcomes), **counts, "findings": bad[:20],
                                       "by_kind": dict(Counter(kinds))}
    summary["seconds"] = round(time.time() - start, 1)
    print(json.dumps(summary, indent=2))
    failed = any(isinstance(v, dict) and (v.get("other") or v.get("crash_despite_probe") or
                                          (v.get("crash") and v.get("probe_caught") is None))
                 for v in summary.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
