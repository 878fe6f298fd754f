"""Where quantization breaks: per-layer SNR of a quantized graph against the float one.

Both graphs come from torch.export of the same module; nodes are matched by the module
they came from (nn_module_stack), the op and their order within that module, since node
names differ between captures.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sdk_builder.quantize.parity import parity

# Compared at activations, adds, muls, pools and linear layers; not at convolutions, whose
# outputs differ in meaning because PT2E folds BatchNorm into them.
LAYER_OPS = ("linear", "addmm", "add", "mul", "hardswish", "hardsigmoid", "relu", "sigmoid",
             "mean", "avg_pool", "max_pool", "cat", "upsample", "interpolate")


def _layer_keys(graph_module: Any) -> dict[str, str]:
    """node name -> '<module path>/<op>#<n>' for the layer ops of a graph."""
    keys, seen = {}, {}
    for node in graph_module.graph.nodes:
        op = str(node.target).split(".")[-2] if node.op == "call_function" else ""
        if not any(k in op for k in LAYER_OPS):
            continue
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        base = f"{path or '(top)'}/{op}"
        seen[base] = seen.get(base, 0) + 1
        keys[node.name] = f"{base}#{seen[base]}"
    return keys


def _node_outputs(graph_module: Any, inputs: tuple) -> dict[str, np.ndarray]:
    """Layer key -> output of that layer for the model's inputs."""
    import torch

    keys = _layer_keys(graph_module)
    outputs: dict[str, np.ndarray] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node.name in keys and isinstance(result, torch.Tensor) and result.is_floating_point():
                outputs[keys[node.name]] = result.detach().numpy().copy()
            return result

    with torch.no_grad():
        Recorder(graph_module).run(*inputs)
    return outputs


def graph_of(module: Any, examples: tuple) -> Any:
    """The module as an exported graph whose nodes carry their module paths."""
    import torch

    return torch.export.export(module, tuple(examples)).module()


def worst_layers(module: Any, quantized: Any, cases: list[tuple[np.ndarray, ...]],
                 top: int = 5) -> list[dict]:
    """The `top` layers whose quantized outputs have the lowest SNR (dB), in graph order
    ties; `cases` hold one array per model input."""
    import torch

    float_graph = graph_of(module, tuple(torch.from_numpy(x) for x in cases[0]))
    snrs: dict[str, list[float]] = {}
    for case in cases:
        xt = tuple(torch.from_numpy(x) for x in case)
        ref, got = _node_outputs(float_graph, xt), _node_outputs(quantized, xt)
        for key, out in got.items():
            if key in ref and out.shape == ref[key].shape:
                snrs.setdefault(key, []).append(parity(ref[key], out)["snr_db"])
    order = [k for k in _layer_keys(float_graph).values() if k in snrs]
    ranked = sorted(order, key=lambda k: float(np.mean(snrs[k])))
    return [{"layer": n, "snr_db": round(float(np.mean(snrs[n])), 2)} for n in ranked[:top]]
