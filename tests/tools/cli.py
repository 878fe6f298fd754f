"""Run the real `pocket` CLI in a child process, as a user's shell would."""
from __future__ import annotations

import subprocess
import sys


def pocket(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sdk_builder.cli", *args],
                          capture_output=True, text=True, timeout=timeout)
