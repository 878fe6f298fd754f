"""ExecuTorch program (.pte) delegated to Core ML: recipe fp16 (iOS 17, FLOAT16 compute).

Lowering runs coremltools inside ExecuTorch's CoreMLBackend.preprocess, which works on
Linux (it only converts and serializes the ML program; no Core ML compile/predict). The
.pte runs only where the runtime has the Core ML delegate (iOS/macOS); here the builder
checks it structurally with runtime_py.backends.executorch.describe().
"""
from __future__ import annotations

from pathlib import Path

from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats._common import check_recipe, prepare_out, quiet_toolchains, version
from sdk_builder.formats.executorch_xnnpack import lower_to_pte

RECIPES = ("fp16",)


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.pte with a CoreMLBackend delegate)."""
    with quiet_toolchains():
        return _export(job)


def _export(job: ExportJob) -> ExportResult:
    import coremltools as ct
    import torch
    from executorch.backends.apple.coreml.compiler import CoreMLBackend
    from executorch.backends.apple.coreml.partition import CoreMLPartitioner

    check_recipe("executorch-coreml", job.recipe, RECIPES)
    out = prepare_out(Path(job.out_path))
    specs = CoreMLBackend.generate_compile_specs(
        compute_unit=ct.ComputeUnit.ALL,
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=ct.precision.FLOAT16,
    )
    with torch.no_grad():
        delegation = lower_to_pte(job.module.eval(), job.example,
                                  [CoreMLPartitioner(compile_specs=specs)], out)
    details = {"toolchain": f"executorch {version('executorch')}, "
                            f"coremltools {version('coremltools')}",
               "torch": version("torch"), "minimum_deployment_target": "iOS17",
               "compute_precision": "float16", "compute_unit": "ALL",
               "quantization": "none (float16 weights and compute)"}
    return ExportResult(path=out, details=details, delegation=delegation)
