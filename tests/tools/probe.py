"""Load artifacts/bundles with runtime_py in a worker subprocess, so a native crash is
recorded against the input that caused it instead of killing the caller.

    probe([(path, check_integrity), ...]) -> [(outcome, message), ...]

outcome: "ran" (loaded and ran once on zeros), "error" (a PocketError: message is its text),
"other" (any other Python exception: a bug), "crash" (the process died: message is the rc).
"""
from __future__ import annotations

import subprocess
import sys

WORKER = r"""
import json, os, sys
import numpy as np
import runtime_py
from runtime_py.errors import PocketError
if os.environ.get("PROBE_QUIET"):
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)   # runtimes' native log lines
for line in sys.stdin:
    path, integrity, artifact = line.rstrip("\n").split("\t")
    print("START", flush=True)
    try:
        if integrity == "describe":
            from runtime_py.runtimes import coreml, executorch
            (coreml if path.endswith(".mlpackage") else executorch).describe(path)
            print("DONE ran ", flush=True)
            continue
        if integrity == "protected":      # as a user calls it: defaults, probe included
            s = runtime_py.load(path, artifact=artifact or None)
        else:                             # straight into the native loader: no safety net
            s = runtime_py.load(path, artifact=artifact or None, check_integrity=integrity == "1",
                                probe=False)
        shape = s.manifest["input"]["shape"] if s.manifest else s._runner.input_shapes[0]
        s.run_raw(np.zeros(shape, np.float32))
        outcome, msg = "ran", ""
    except PocketError as exc:
        outcome, msg = "error", str(exc)
    except Exception as exc:
        outcome, msg = "other", type(exc).__name__ + ": " + str(exc)
    print("DONE", outcome, json.dumps(msg), flush=True)
"""


def probe(cases: list[tuple], quiet: bool = True,
          timeout: float = 600) -> list[tuple[str, str]]:
    """Outcome per (path, check_integrity[, artifact]); check_integrity may be "describe"
    (read the structure with the runtime's describe() instead) or "protected" (runtime_py.load
    with its defaults, i.e. with the crash probe). Restarts after a crash."""
    import json
    import os

    cases = [(str(c[0]), c[1] if c[1] in ("describe", "protected") else str(int(c[1])),
              c[2] if len(c) > 2 else "") for c in cases]

    env = dict(os.environ, PROBE_QUIET="1" if quiet else "")
    results: list[tuple[str, str]] = []
    while len(results) < len(cases):
        todo = cases[len(results):]
        proc = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True, text=True,
                              input="".join("\t".join(c) + "\n" for c in todo), timeout=timeout)
        started = False
        for line in proc.stdout.splitlines():
            if line.startswith("START"):
                started = True
            elif line.startswith("DONE"):
                _, outcome, msg = line.split(" ", 2)
                results.append((outcome, json.loads(msg) if msg.strip() else ""))
                started = False
        if len(results) < len(cases):
            if not started:
                raise RuntimeError(f"probe worker failed to start (rc={proc.returncode}): "
                                   f"{proc.stderr[-2000:]}")
            results.append(("crash", f"rc={proc.returncode}"))
    return results
