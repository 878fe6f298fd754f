"""Errors every layer raises; the CLI prints them as one line and exits non-zero."""
from __future__ import annotations

import difflib
from typing import Iterable


class PocketError(Exception):
    """A problem the user can fix; str() is one line saying what and how."""

    exit_code = 1


class UsageError(PocketError):
    """A wrong name or option (unknown model, target, recipe, ...)."""

    exit_code = 2


class ExtraInputsError(UsageError):
    """The extra inputs given do not match the ones the model takes (count or shape)."""


class IntegrityError(PocketError):
    """A bundle or artifact that does not match its manifest."""


class UnsupportedError(PocketError):
    """Something this machine or format cannot do (e.g. Core ML prediction on Linux)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text folded onto one line, for error messages."""
    text = " ".join(str(exc).split())
    return text[:limit] or type(exc).__name__


def signal_name(returncode: int) -> str:
    """'SIGSEGV' for a child process killed by signal 11 (returncode -11)."""
    import signal

    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
