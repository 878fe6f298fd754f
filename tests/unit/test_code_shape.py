"""Code shape: no Python file of the packages or the tests is over 600 lines and no function
(or method, nested ones included) is over 60 lines, counted from its `def` (decorators not
included) to its last line, as ast gives them (end_lineno - lineno + 1)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("runtime_py", "sdk_builder", "models", "tests")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "__pycache__" not in p.parts)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function in `source` longer than `limit` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}."
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = child.end_lineno - child.lineno + 1
                if lines > limit:
                    found.append((name[:-1], lines))
            visit(child, name)
    visit(ast.parse(source), "")
    return found


def test_the_packages_hold_python_files():
    files = _sources()
    assert {p.relative_to(ROOT).parts[0] for p in files} == set(PACKAGES)
    assert len(files) > 100


def test_no_file_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines (split them): {long}"


def test_no_function_is_over_60_lines():
    long = {f"{p.relative_to(ROOT)}::{name}": n for p in _sources()
            for name, n in long_functions(p.read_text(encoding="utf-8"))}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them): {long}"


@pytest.mark.parametrize("body_lines, too_long", [(59, False), (60, True)])
def test_the_function_length_counts_def_to_last_line(body_lines, too_long):
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    source = f"class C:\n    @staticmethod\n    def outer():\n        def inner():\n{body}        return inner\n"
    source = source.replace("\n    x", "\n            x")         # inner's body, one level deeper
    found = long_functions(source)
    # inner: def + body lines = body_lines + 1; outer adds its own `def` and `return`
    assert found == ([("C.outer", 63), ("C.outer.inner", 61)] if too_long else [("C.outer", 62)])
