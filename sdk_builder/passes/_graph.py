"""Graph-editing helpers shared by the canonicalizing passes (sdk_builder.passes and
sdk_builder.passes.xnnpack)."""
from __future__ import annotations

from typing import Any


def _aten():
    import torch

    return torch.ops.aten


def _calls(gm: Any, *targets: Any) -> list:
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target in targets]


def _shape(node: Any) -> tuple[int, ...] | None:
    val = getattr(node, "meta", {}).get("val")
    try:
        return tuple(int(d) for d in val.shape)
    except (AttributeError, TypeError):
        return None                        # no static shape recorded: leave the node alone


def _pair(value: Any, default: int) -> list[int]:
    if value is None or value == []:
        return [default, default]
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return values * 2 if len(values) == 1 else values


def _new(gm: Any, before: Any, target: Any, args: tuple, like: Any = None) -> Any:
    """A call_function node inserted before `before`, carrying `like`'s stack trace, so
    errors still point at the user's line. Not its module or source tags: PT2E quantizers
    pick patterns by them, and a mean tagged as the AdaptiveAvgPool2d it replaced trips the
    XNNPACK quantizer ("mean is not an aten adaptive_avg_pool2d operator")."""
    with gm.graph.inserting_before(before):
        node = gm.graph.call_function(target, args)
    source = like if like is not None else before
    for key in ("stack_trace",):
        if key in source.meta:
            node.meta[key] = source.meta[key]
    return node


def _replace(gm: Any, old: Any, new: Any) -> None:
    """`new` in place of `old`, carrying its recorded value so later passes see its shape."""
    if hasattr(new, "meta") and "val" not in new.meta and "val" in old.meta:
        new.meta["val"] = old.meta["val"]
    old.replace_all_uses_with(new)
    gm.graph.erase_node(old)
