"""Keep the runtimes' native chatter off the user's terminal unless something goes wrong.

ExecuTorch's C++ runtime prints CPU probes ("[cpuinfo_utils.cpp:71] Reading file ...") on
file descriptor 2 when it first loads a method; Python's `warnings` and `sys.stderr` cannot
catch that. `captured()` points fd 2 at a temporary file for the duration of a load, so a
clean load prints nothing, and a failed one can quote what the runtime said.

fd 2 is process-wide: while a capture is open, other threads' stderr lands in it too.
Captures are therefore short (loading, not running) and serialised by one lock.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


class Capture:
    text = ""

    def last_lines(self, n: int = 3) -> str:
        """The last `n` non-empty lines, joined with ' | ' (for a one-line error)."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        return " | ".join(lines[-n:])

    def quote(self) -> str:
        """' (runtime log: ...)' with the last lines, or '' if the runtime said nothing."""
        said = " ".join(self.last_lines().split())[:300]
        return f" (runtime log: {said})" if said else ""


@contextmanager
def captured() -> Iterator[Capture]:
    """Redirect fd 2 into a Capture for the block (a no-op where fd 2 cannot be duplicated)."""
    capture = Capture()
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield capture
            return
        with tempfile.TemporaryFile(mode="w+b") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield capture
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                capture.text = sink.read().decode("utf-8", "replace")
