"""Helpers the format modules share (no heavy imports at module level)."""
from __future__ import annotations

import contextlib
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from runtime_py.errors import UsageError


def version(dist: str) -> str:
    """Installed version of a distribution, or 'unknown'."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def check_recipe(fmt: str, recipe: str) -> None:
    """Refuse a recipe the formats table does not list for `fmt`, naming those it does."""
    from sdk_builder.formats import get_format

    offered = get_format(fmt).recipes
    if recipe not in offered:
        from runtime_py.errors import did_you_mean

        raise UsageError(f"format '{fmt}' has no recipe '{recipe}'{did_you_mean(recipe, offered)}; "
                         f"it accepts: {', '.join(offered)}")


def prepare_out(path: Path) -> Path:
    """Make the parent folder and remove a stale artifact (file or .mlpackage folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


def edge_delegation(graph_module: Any) -> dict:
    """Delegation summary of a lowered ExecuTorch edge graph.

    Uses executorch.devtools.backend_debug.get_delegation_info: ops inside lowered
    modules count as delegated, every other call_function node (except the
    executorch_call_delegate calls themselves and tuple getitems) as fallback.
    """
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    ignore = {"getitem", "executorch_call_delegate"}
    delegated = 0
    fallback: dict[str, int] = {}
    for op, row in info.delegation_by_operator.items():
        if op in ignore:
            continue
        delegated += row.delegated
        if row.non_delegated:
            fallback[op] = fallback.get(op, 0) + row.non_delegated
    total = delegated + sum(fallback.values())
    return {
        "delegated_ops": delegated,
        "total_ops": total,
        "delegated_share": round(delegated / total, 4) if total else 0.0,
        "fallback_ops": sorted(fallback),
        "delegated_subgraphs": info.num_delegated_subgraphs,
    }


@contextlib.contextmanager
def quiet_toolchains() -> Iterator[None]:
    """Silence litert-torch's task log while a format exports (the CLI shows its own
    progress). coremltools' tqdm bars cannot be turned off this way: tqdm reads TQDM_*
    variables once, at import."""
    saved = {k: os.environ.get(k) for k in _QUIET_ENV}
    os.environ.update(_QUIET_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "n"}
