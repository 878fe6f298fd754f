"""ExecuTorch program (.pte) delegated to XNNPACK: recipes fp32 and int8-static.

torch.export -> (PT2E int8 with XNNPACKQuantizer) -> to_edge_transform_and_lower with
XnnpackPartitioner -> to_executorch -> .pte. The quantized graph keeps float inputs and
outputs: quantize/dequantize nodes at the edges are lowered into the XNNPACK delegate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats._common import (check_recipe, edge_delegation, prepare_out,
                                         quiet_toolchains, version)
from sdk_builder.quantize import calibration_for, pt2e_quantize

RECIPES = ("fp32", "int8-static")


def _int8_static(job: ExportJob) -> tuple[Any, dict]:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    quantized, samples = pt2e_quantize(job.module, job.example, quantizer, calibration_for(job))
    details = {
        "quantization": "PT2E XNNPACKQuantizer: int8 per-channel symmetric weights, int8 "
                        "per-tensor static activations (histogram observer), float I/O",
        "calibration_samples": samples,
    }
    return quantized, details


def _constant_fold_pass() -> Any:
    """An ExportedProgram pass running exir's constant_prop_pass. After lowering, scalar
    constants the delegate takes (e.g. from hardswish/hardsigmoid) are left behind as
    `_to_dim_order_copy` kernels outside the delegate; folding them leaves a graph that is
    one delegate call."""
    from executorch.exir.pass_base import ExportedProgramPassBase, ExportedProgramPassResult
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    class ConstantFold(ExportedProgramPassBase):
        def call(self, exported_program: Any) -> Any:
            return ExportedProgramPassResult(constant_prop_pass(exported_program), True)

    return ConstantFold()


def _avg_pool_without_padding(ep: Any) -> int:
    """Set count_include_pad=False on unpadded avg_pool2d nodes (in place); return how many.

    nn.AvgPool2d defaults to count_include_pad=True, which XNNPACK's partitioner refuses
    even when padding is 0 (then the flag changes nothing), leaving the pool on the
    portable CPU kernels and splitting the delegate in two."""
    import torch

    changed = 0
    for node in ep.graph_module.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.avg_pool2d.default:
            continue
        args = list(node.args) + [None] * (7 - len(node.args))
        kernel, stride, padding, ceil_mode, include_pad, divisor = args[1:7]
        padding = padding if padding is not None else [0, 0]
        if any(padding) or include_pad is False:
            continue
        node.args = (args[0], kernel, stride if stride is not None else [],
                     list(padding), bool(ceil_mode), False, divisor)
        node.kwargs = {}
        changed += 1
    if changed:
        ep.graph_module.recompile()
    return changed


def lower_to_pte(module: Any, example: Any, partitioners: list, out_path: Path) -> dict | None:
    """Export `module`, lower with `partitioners`, write the .pte; return delegation info."""
    import torch
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.pass_manager import ExportedProgramPassManager

    ep = torch.export.export(module, (example,))
    _avg_pool_without_padding(ep)
    edge = to_edge_transform_and_lower(ep, partitioner=partitioners)
    edge = edge.transform(ExportedProgramPassManager([_constant_fold_pass()]))
    delegation = edge_delegation(edge.exported_program().graph_module)
    program = edge.to_executorch()
    with open(out_path, "wb") as f:
        program.write_to_file(f)
    return delegation


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.pte) for recipe fp32 or int8-static."""
    with quiet_toolchains():
        return _export(job)


def _export(job: ExportJob) -> ExportResult:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    check_recipe("executorch-xnnpack", job.recipe, RECIPES)
    out = prepare_out(Path(job.out_path))
    details: dict = {"toolchain": f"executorch {version('executorch')}",
                     "torch": version("torch")}
    module = job.module.eval()
    with torch.no_grad():
        if job.recipe == "int8-static":
            module, qdetails = _int8_static(job)
            details.update(qdetails)
        else:
            details["quantization"] = "none (float32)"
        delegation = lower_to_pte(module, job.example, [XnnpackPartitioner()], out)
    return ExportResult(path=out, details=details, delegation=delegation)
