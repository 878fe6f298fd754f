"""The JSON schemas shared by the builder, runtime_py and the demo apps."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The parsed schema `<name>.schema.json` (e.g. 'manifest')."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
