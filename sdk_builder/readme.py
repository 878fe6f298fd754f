"""Regenerate the README's generated blocks (formats, zoo): python -m sdk_builder.readme

Each block sits between `<!-- NAME:start -->` and `<!-- NAME:end -->`; a unit test fails
when the README differs from what this writes.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from sdk_builder.formats import formats_markdown_table
from sdk_builder.quantize.recipes import RECIPES

README = Path(__file__).resolve().parents[1] / "README.md"


def _formats() -> str:
    recipes = "\n".join(f"- `{r.name}`: {r.summary}" for r in RECIPES)
    return f"{formats_markdown_table()}\n\nRecipes:\n{recipes}"


def _zoo() -> str:
    from models.catalog import zoo_markdown_table
    from models.tasks import TASKS

    tasks = "\n".join(f"- `{t.name}`: {t.summary}; metric {t.metric or 'none'}; `pocket run` shows "
                      f"{t.shows}" for t in TASKS)
    return f"{zoo_markdown_table()}\n\nTasks (the task table, `models/tasks.py`):\n{tasks}"


def _corpus() -> str:
    from sdk_builder.corpus import load, markdown

    result = load()
    return markdown(result) if result else "(no corpus run recorded yet: `make corpus`)"


BLOCKS: dict[str, Callable[[], str]] = {"formats": _formats, "zoo": _zoo, "corpus": _corpus}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def generated_block(name: str = "formats") -> str:
    start, end = markers(name)
    return f"{start}\n{BLOCKS[name]()}\n{end}"


def render(text: str) -> str:
    """`text` with every generated block replaced by its current content."""
    for name in BLOCKS:
        start, end = markers(name)
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _, n=name: generated_block(n), text)
    return text


def main() -> None:
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
