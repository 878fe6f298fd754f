"""The README's examples as data: every `pocket` line of its shell blocks and every python
block (parse), the table of replacements a test may use (Instead), and what runs for each
example (plan): the table's row, the shared bundle a `pocket build` is, or the text as written.
Used by tests/export/test_readme_examples.py, which runs them."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from tests.bundles import by_arguments

BASH = {"bash", "sh", "shell", "console", "zsh"}
PYTHON = {"python", "py", "python3", "pycon"}


# --- the README's examples ---------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    kind: str      # "pocket" or "python"
    text: str      # a command (one line: continuations joined, comment dropped) or a block
    line: int      # where it starts in the README

    @property
    def key(self) -> str:
        """How INSTEAD names it: the command, or a python block's first line."""
        if self.kind == "pocket":
            return self.text
        return "python: " + next(line.strip() for line in self.text.splitlines() if line.strip())


def parse(markdown: str) -> list[Example]:
    """Every line starting with `pocket ` in a shell block, and every python block."""
    examples: list[Example] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i + 1, fence.group(2).lower()
        end = start
        while end < len(lines) and not lines[end].strip().startswith(fence.group(1)):
            end += 1
        body = lines[start:end]
        if lang in PYTHON:
            examples.append(Example("python", "\n".join(body) + "\n", start + 1))
        elif lang in BASH:
            examples += _shell_commands(body, start + 1)
        i = end + 1
    return examples


def _shell_commands(body: list[str], first_line: int) -> list[Example]:
    out, j = [], 0
    while j < len(body):
        at, text = j, body[j]
        while text.rstrip().endswith("\\") and j + 1 < len(body):      # a continued line
            j += 1
            text = text.rstrip()[:-1] + " " + body[j].strip()
        j += 1
        text = re.sub(r"^\s*\$\s+", "", text).strip()                   # a "$ " prompt
        if text == "pocket" or text.startswith("pocket "):
            words = shlex.split(text, comments=True)
            out.append(Example("pocket", " ".join(words), first_line + at))
    return out


@dataclass(frozen=True)
class Instead:
    why: str
    commands: tuple[str, ...] = ()     # pocket commands run in the README folder, in order
    shared: str | None = None          # or: the shared bundle (tests/bundles.py) it is
    exit_code: int = 0


@dataclass(frozen=True)
class Step:
    example: Example
    commands: tuple[tuple[str, ...], ...] = ()   # argv after `pocket`, run in order
    shared: str | None = None                    # served by this shared bundle
    exit_code: int = 0
    why: str | None = None                       # set when the step is not the README's text

    @property
    def id(self) -> str:
        return f"L{self.example.line}-{self.example.key[:70]}"


def plan(examples: list[Example], table: dict[str, Instead]) -> list[Step]:
    """What the test runs for each example: the table's replacement, the shared bundle a
    `pocket build` is, or the example as written."""
    steps = []
    for ex in examples:
        if ex.key in table:
            row = table[ex.key]
            steps.append(Step(ex, tuple(tuple(shlex.split(c)[1:]) for c in row.commands),
                              row.shared, row.exit_code, row.why))
        elif ex.kind == "pocket":
            argv = tuple(shlex.split(ex.text)[1:])
            shared = by_arguments(argv[1:]) if argv[:1] == ("build",) else None
            steps.append(Step(ex, () if shared else (argv,), shared))
        else:
            steps.append(Step(ex))
    return steps


def stale(examples: list[Example], table: dict[str, Instead]) -> list[str]:
    """Table entries that no README example has (renamed or removed examples)."""
    keys = {ex.key for ex in examples}
    return [key for key in table if key not in keys]
