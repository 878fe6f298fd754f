"""ExecuTorch program (.pte) delegated to XNNPACK.

Recipes:
  fp32                    float32
  int8-dynamic            PT2E XNNPACKQuantizer, int8 per-channel weights, activations
                          quantized at run time (per token/tensor) for conv and linear;
                          depthwise convs and conv->ReLU stay float (no dynamic pattern)
  int8-static             PT2E, int8 per-channel weights, calibrated per-tensor activations
  int8-static-per-tensor  the same with per-tensor weights
  int8da-w4g32            torchao Int8DynamicActivationIntxWeightConfig on nn.Linear only:
                          int4 weights in groups of 32 along in_features, int8 dynamic
                          activations (convolutions stay float32)

torch.export -> (quantization) -> to_edge_transform_and_lower with XnnpackPartitioner ->
to_executorch -> .pte. Quantized graphs keep float inputs and outputs: quantize/dequantize
nodes at the edges are lowered into the XNNPACK delegate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime_py.errors import UsageError
from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats._common import edge_delegation, partitioner_reasons
from sdk_builder.quantize.pt2e import calibration_for, keep_float, present_types, pt2e_quantize
from sdk_builder.quantize.recipes import W4_GROUP, recipe, w4_linears



def _pt2e(job: ExportJob) -> tuple[Any, dict]:
    """int8-dynamic, int8-static, int8-static-per-tensor via PT2E + XNNPACKQuantizer."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)

    dynamic = job.recipe == "int8-dynamic"
    per_channel = job.recipe != "int8-static-per-tensor"
    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=dynamic))
    kept_types = present_types(job.module, job.keep_float)
    kept = {"kept_float_modules": keep_float(quantizer, kept_types)} if kept_types else {}
    weights = "per-channel" if per_channel else "per-tensor"
    if dynamic:
        # Activation ranges are computed at run time; one forward pass records the weights.
        quantized, _ = pt2e_quantize(job.module, job.examples, quantizer, [job.examples])
        return quantized, {
            "quantization": f"PT2E XNNPACKQuantizer: int8 {weights} symmetric weights, int8 "
                            "activations quantized at run time (dynamic, asymmetric "
                            "per-tensor/per-token) for linear and conv; depthwise convs and "
                            "convs feeding a ReLU stay float32 (XNNPACKQuantizer has no dynamic "
                            "pattern for them), as do other ops; float I/O",
            "weight_granularity": weights, "activations": "dynamic int8", **kept}
    quantized, samples = pt2e_quantize(job.module, job.examples, quantizer, calibration_for(job))
    return quantized, {
        "quantization": f"PT2E XNNPACKQuantizer: int8 {weights} symmetric weights, int8 "
                        "per-tensor static activations (histogram observer), float I/O",
        "weight_granularity": weights, "activations": "static int8 (calibrated)",
        "calibration_samples": samples, **kept}


def _int8da_w4g32(job: ExportJob) -> tuple[Any, dict]:
    """Linear layers with in_features % 32 == 0 -> int4 group-32 weights, int8 dynamic
    activations (torchao quantize_ on a copy; the tensor subclass exports to the
    dequantize_affine/choose_qparams pattern XNNPACK lowers to its qd8-f32-qb4w GEMM).
    The job carries the module as written (the recipe record's needs_layers)."""
    import copy

    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, PerGroup, quantize_

    why_not = recipe("int8da-w4g32").why_not(job.module)
    if why_not:
        raise UsageError(f"recipe 'int8da-w4g32' does not apply: {why_not}; pick int8-dynamic "
                         "or int8-static")
    linears = [m for m in job.module.modules() if isinstance(m, torch.nn.Linear)]
    chosen = w4_linears(job.module)
    module = copy.deepcopy(job.module).eval()
    chosen_ids = {id(m) for m in w4_linears(module)}
    quantize_(module, Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=PerGroup(W4_GROUP)),
        filter_fn=lambda m, _fqn: id(m) in chosen_ids)
    return module, {
        "quantization": f"torchao Int8DynamicActivationIntxWeightConfig: int4 symmetric "
                        f"weights in groups of {W4_GROUP} on nn.Linear, int8 dynamic "
                        "per-token activations; convolutions and other ops float32; float I/O",
        "quantized_linear_layers": len(chosen),
        "float_linear_layers": len(linears) - len(chosen),
        "quantized_weights": int(sum(m.weight.numel() for m in chosen)),
        "group_size": W4_GROUP}


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


def weight_op_counts(graph_module: Any) -> dict:
    """Convolutions/linears of an exported graph whose weight comes through a dequantize
    node ("quantized") or directly ("float")."""
    counts = {"quantized": 0, "float": 0}
    for node in graph_module.graph.nodes:
        name = str(node.target)
        if node.op != "call_function" or not any(k in name for k in ("conv", "linear")) \
                or len(node.args) < 2:
            continue
        weight = node.args[1]
        while getattr(weight, "op", None) == "call_function" and "dequantize" not in \
                str(weight.target) and weight.args and hasattr(weight.args[0], "op"):
            weight = weight.args[0]   # through permutes/views/copies
        quantized = getattr(weight, "op", None) == "call_function" and \
            "dequantize" in str(weight.target)
        counts["quantized" if quantized else "float"] += 1
    return counts


def lower_to_pte(module: Any, examples: tuple, partitioners: list, out_path: Path,
                 details: dict | None = None) -> dict | None:
    """Export `module`, lower with `partitioners`, write the .pte; return delegation info.
    When `details` is given, the exported graph's quantized/float weight ops go into it."""
    import torch
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.pass_manager import ExportedProgramPassManager

    ep = torch.export.export(module, tuple(examples))
    if details is not None:
        counts = weight_op_counts(ep.graph_module)
        details.update({"quantized_weight_ops": counts["quantized"],
                        "float_weight_ops": counts["float"]})
    _avg_pool_without_padding(ep)
    with partitioner_reasons() as reasons:
        edge = to_edge_transform_and_lower(ep, partitioner=partitioners)
    edge = edge.transform(ExportedProgramPassManager([_constant_fold_pass()]))
    delegation = edge_delegation(edge.exported_program().graph_module, reasons)
    program = edge.to_executorch()
    with open(out_path, "wb") as f:
        program.write_to_file(f)
    return delegation


def _quantized(job: ExportJob) -> tuple[Any, dict, Any]:
    """(module to lower, recipe details, PT2E twin for the layer-wise report or None)."""
    if job.recipe == "fp32":
        return job.module.eval(), {"quantization": "none (float32)"}, None
    if job.recipe == "int8da-w4g32":
        module, details = _int8da_w4g32(job)
        return module, details, None
    module, details = _pt2e(job)
    return module, details, module


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.pte); Format.export has checked the recipe and prepared the path."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    out = Path(job.out_path)
    with torch.no_grad():
        module, details, twin = _quantized(job)
        delegation = lower_to_pte(module, job.examples, [XnnpackPartitioner()], out, details)
    return ExportResult(path=out, details=details, delegation=delegation, quantized_module=twin)
