"""Which operators a runtime's delegate actually takes, read from the runtime itself.

LiteRT (ai-edge-litert 2.3.0) applies the XNNPACK delegate when tensors are allocated: the
original nodes stay in the node list (indices 0..n-1) and one `DELEGATE` node per
partition is appended. A partition is the set of original nodes between a delegate
node's inputs and outputs, so walking back from each delegate node's outputs to its
inputs recovers exactly the nodes it replaced; every other original node runs on the
builtin (reference/optimized) kernels: a fallback.

The summary has the same keys as the builder's ExecuTorch `edge_delegation`, so
`pocket info` and the bench read both the same way.
"""
from __future__ import annotations

from pathlib import Path

DELEGATE_NODE = "DELEGATE"


def partition_cover(nodes: list[dict], n_original: int) -> tuple[set[int], int]:
    """(indices of original nodes covered by delegate nodes, number of delegate nodes).

    `nodes` are {"op_name", "inputs", "outputs"} in node order; the first `n_original`
    are the model's own operators, the rest are delegate kernels."""
    producer: dict[int, int] = {}
    for idx in range(n_original):
        for t in nodes[idx]["outputs"]:
            producer[int(t)] = idx
    covered: set[int] = set()
    delegates = 0
    for node in nodes[n_original:]:
        if node["op_name"] != DELEGATE_NODE:
            continue
        delegates += 1
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in boundary or t in seen or t not in producer:
                continue
            seen.add(t)
            idx = producer[t]
            if idx not in covered:
                covered.add(idx)
                stack.extend(int(i) for i in nodes[idx]["inputs"] if int(i) >= 0)
    return covered, delegates


def summarize(nodes: list[dict], n_original: int) -> dict:
    """Delegation summary: delegated_ops, total_ops, delegated_share, fallback_ops
    (sorted op names), fallback_counts ({op: count}), fallback_reasons ({op: why}),
    delegated_subgraphs. A node may carry "dtype" (of its first input) for the reason."""
    covered, delegates = partition_cover(nodes, n_original)
    fallback: dict[str, int] = {}
    dtypes: dict[str, set[str]] = {}
    for idx in range(n_original):
        if idx not in covered:
            name = nodes[idx]["op_name"]
            fallback[name] = fallback.get(name, 0) + 1
            if nodes[idx].get("dtype"):
                dtypes.setdefault(name, set()).add(nodes[idx]["dtype"])
    total = n_original
    return {"delegated_ops": len(covered), "total_ops": total,
            "delegated_share": round(len(covered) / total, 4) if total else 0.0,
            "fallback_ops": sorted(fallback), "fallback_counts": dict(sorted(fallback.items())),
            "fallback_reasons": {op: _reason(op, sorted(dtypes.get(op, ()))) for op in sorted(fallback)},
            "delegated_subgraphs": delegates}


def _reason(op: str, dtypes: list[str]) -> str:
    on = f" on {'/'.join(dtypes)} tensors" if dtypes else ""
    return (f"the XNNPACK delegate did not take {op}{on} (unsupported type or parameters "
            "in this LiteRT build): it runs on LiteRT's builtin CPU kernel")


def litert_delegation(path: str | Path, threads: int = 1) -> dict:
    """XNNPACK delegation of a .tflite as the LiteRT Interpreter applies it on this machine."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    n_original = interp._interpreter.NumNodes()
    interp.allocate_tensors()                     # the default XNNPACK delegate is applied here
    raw = interp._interpreter
    dtype = {t["index"]: t["dtype"].__name__ for t in interp.get_tensor_details()}
    nodes = [{"op_name": raw.NodeName(i), "inputs": list(raw.NodeInputs(i)),
              "outputs": list(raw.NodeOutputs(i))} for i in range(raw.NumNodes())]
    for node in nodes[:n_original]:
        first = next((int(t) for t in node["inputs"] if int(t) >= 0), None)
        node["dtype"] = dtype.get(first)
    summary = summarize(nodes, n_original)
    summary["delegate"] = "XNNPACK (LiteRT default delegate)"
    return summary
