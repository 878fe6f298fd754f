"""ExecuTorch program (.pte) delegated to Core ML (iOS 17, FLOAT16 compute): recipes fp16
and w8 (the Core ML format's w8 settings, applied by CoreMLBackend after conversion through
its op_linear_quantizer_config compile spec).

Lowering runs coremltools inside ExecuTorch's CoreMLBackend.preprocess, which works on
Linux (it only converts and serializes the ML program; no Core ML compile/predict). The
.pte runs only where the runtime has the Core ML delegate (iOS/macOS); here the builder
checks it structurally with runtime_py.runtimes.executorch.describe().
"""
from __future__ import annotations

from pathlib import Path

from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats.coreml import W8_LINEAR_CONFIG
from sdk_builder.formats.executorch_xnnpack import lower_to_pte
from sdk_builder.quantize.pt2e import module_type_name, present_types

QUANTIZATION = {
    "fp16": "none (float16 weights and compute)",
    "w8": "int8 linear symmetric per-channel weights (coremltools linear_quantize_weights "
          "inside CoreMLBackend), fp16 compute",
}


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.pte with a CoreMLBackend delegate); Format.export has checked the
    recipe and prepared the path."""
    import coremltools as ct
    import torch
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    out = Path(job.out_path)
    kept = present_types(job.module, job.keep_float)
    # CoreMLBackend takes one precision for the whole delegate (no op selector): modules
    # that must stay float32 (a router whose near-ties fp16 would reorder) make it float32
    precision = ct.precision.FLOAT32 if kept else ct.precision.FLOAT16
    specs = CoreMLBackend.generate_compile_specs(
        compute_unit=ct.ComputeUnit.ALL,
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=precision,
        op_linear_quantizer_config=dict(W8_LINEAR_CONFIG) if job.recipe == "w8" else None,
    )
    with torch.no_grad():
        delegation = lower_to_pte(job.module.eval(), job.examples,
                                  [CoreMLPartitioner(compile_specs=specs)], out)
    details = {"minimum_deployment_target": "iOS17",
               "compute_precision": "float32" if kept else "float16", "compute_unit": "ALL",
               "quantization": QUANTIZATION[job.recipe]}
    if kept:
        details["warning"] = (
            f"the Core ML delegate computes in float32 throughout (weights stored "
            f"{'int8' if job.recipe == 'w8' else 'float32'}): CoreMLBackend has one precision "
            f"per delegate and {', '.join(module_type_name(c) for c in kept)} must stay float32 "
            "(in float16 its discrete outputs differ from PyTorch's); the .mlpackage keeps "
            "only those in float32")
    return ExportResult(path=out, details=details, delegation=delegation)
