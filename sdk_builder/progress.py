"""Step-by-step progress on the terminal, kept visible while toolchain chatter is captured."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def terminal_stream():
    """A writable handle on the real stderr that survives fd redirection."""
    return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)


# Test hook: "<step title prefix>=<flag file>" holds the build when a step with that title
# starts: the flag file is written, and the step waits while it exists. Tests that signal
# or race a build use it to act at a known step instead of guessing with timers.
HOLD_ENV = "POCKET_TEST_HOLD_STEP"


def _hold_if_asked(description: str) -> None:
    prefix, _, flag = os.environ.get(HOLD_ENV, "").partition("=")
    if not prefix or not flag or not description.startswith(prefix):
        return
    path = Path(flag)
    path.write_text(description, encoding="utf-8")
    while path.exists():
        time.sleep(0.05)


class Steps:
    """A spinner per step, a ✓ line with its duration when done."""

    def __init__(self, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(file=terminal_stream(), stderr=True, quiet=quiet)

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        start = time.perf_counter()
        with self.console.status(description, spinner="dots"):
            try:
                _hold_if_asked(description)
                yield
            except BaseException:
                self.console.print(f"[red]✗[/] {description}")
                raise
        self.console.print(f"[green]✓[/] {description} [dim]({time.perf_counter() - start:.1f} s)[/]")


@contextmanager
def capture_native_output(log_path: Path) -> Iterator[Path]:
    """Send everything written to fd 1 and 2 (C++ loggers included) to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield log_path
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):   # e.g. the log's disk is full: still restore fds
                    pass
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
