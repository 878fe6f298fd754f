"""Regenerate the README's formats table from the formats table: python -m sdk_builder.readme"""
from __future__ import annotations

import re
from pathlib import Path

from sdk_builder.formats import RECIPES, formats_markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- formats:start -->", "<!-- formats:end -->"


def generated_block() -> str:
    recipes = "\n".join(f"- `{name}`: {text}" for name, text in RECIPES.items())
    return f"{START}\n{formats_markdown_table()}\n\nRecipes:\n{recipes}\n{END}"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(lambda _: generated_block(), text), encoding="utf-8")


if __name__ == "__main__":
    main()
