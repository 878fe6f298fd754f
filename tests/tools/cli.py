"""Run the real `pocket` CLI in a child process, as a user's shell would."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pocket(*args: str, timeout: int = 1800, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """`pocket ARGS...` in a child process (in folder `cwd`, like a user's shell there)."""
    return subprocess.run([sys.executable, "-m", "sdk_builder.cli", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)
