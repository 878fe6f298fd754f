"""Helpers the format modules share (no heavy imports at module level)."""
from __future__ import annotations

import contextlib
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator


def version(dist: str) -> str:
    """Installed version of a distribution, or 'unknown'."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def prepare_out(path: Path) -> Path:
    """Make the parent folder and remove a stale artifact (file or .mlpackage folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


NO_RULE = "the partitioner has no rule for this op: it runs on ExecuTorch's portable CPU kernels"


@contextlib.contextmanager
def partitioner_reasons() -> Iterator[dict[str, str]]:
    """Collect, per op name, the first reason a partitioner gave for not delegating it.

    Partitioners report refusals through exir's WhyNoPartition at DEBUG level (one mutable
    object, so the message is read while the record is emitted). Ops the partitioner has
    no rule for are not reported; edge_delegation() names those itself."""
    import logging

    reasons: dict[str, str] = {}

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            node = getattr(record.msg, "node", None)
            reason = getattr(record.msg, "reason", None)
            if node is not None and reason:
                reasons.setdefault(_op_key(node.target), str(reason))
            elif record.levelno >= logging.WARNING:   # what the user would have seen anyway
                logging.getLogger().handle(record)

    logger = logging.getLogger("executorch.backends")
    handler, level, propagate = Collect(logging.DEBUG), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False          # keep the debug chatter off the root handlers
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _op_key(target: Any) -> str:
    """'aten.upsample_nearest2d.vec' -> 'aten_upsample_nearest2d_vec', the naming of
    get_delegation_info's operator table."""
    name = getattr(target, "__name__", None) or str(target)
    return name.replace(".", "_")


def edge_delegation(graph_module: Any, reasons: dict[str, str] | None = None) -> dict:
    """Delegation summary of a lowered ExecuTorch edge graph.

    Uses executorch.devtools.backend_debug.get_delegation_info: ops inside lowered
    modules count as delegated, every other call_function node (except the
    executorch_call_delegate calls themselves and tuple getitems) as fallback.
    `reasons` ({op: why}, from partitioner_reasons) explains the fallbacks.
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
        "fallback_counts": dict(sorted(fallback.items())),
        "fallback_reasons": {op: (reasons or {}).get(op, NO_RULE) for op in sorted(fallback)},
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
