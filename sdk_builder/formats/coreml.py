"""Core ML ML program (.mlpackage, iOS 17): recipes fp16 and w8.

torch.export -> run_decompositions({}) -> coremltools.convert (mlprogram, iOS17, FLOAT16
compute). w8 then quantizes weights linearly to int8 (per-channel symmetric) with
coremltools.optimize.coreml.linear_quantize_weights; the weight_threshold is lowered so
the small convolution kernels of phone-sized models are quantized as well.
Core ML cannot predict on Linux: the builder checks the package structurally with
runtime_py.backends.coreml.describe().
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats._common import check_recipe, prepare_out, quiet_toolchains, version

RECIPES = ("fp16", "w8")
INPUT_NAME = "input"
OUTPUT_PREFIX = "output"
W8_WEIGHT_THRESHOLD = 64     # elements; coremltools' default 2048 skips most small convs


def convert_fp16(module: Any, example: Any) -> Any:
    """An fp16 ML program (coremltools MLModel, not yet saved) for iOS 17."""
    import coremltools as ct
    import numpy as np
    import torch

    ep = torch.export.export(module.eval(), (example,))
    ep = ep.run_decompositions({})
    n_out = len(ep.graph_signature.user_outputs)
    return ct.convert(
        ep,
        # float32 I/O stated explicitly: with an iOS17 target and FLOAT16 precision
        # coremltools otherwise makes the model's inputs and outputs float16.
        inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(example.shape), dtype=np.float32)],
        outputs=[ct.TensorType(name=f"{OUTPUT_PREFIX}{i}", dtype=np.float32)
                 for i in range(n_out)],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=ct.precision.FLOAT16,
        skip_model_load=True,
    )


def _weight_ops(mlmodel: Any) -> dict[str, list[str]]:
    """conv/linear/matmul ops of the main function, split by whether their weight comes
    from an int8 constexpr (quantized) or a plain fp16 const."""
    spec = mlmodel.get_spec()
    result: dict[str, list[str]] = {"quantized": [], "float": []}
    for block in spec.mlProgram.functions["main"].block_specializations.values():
        dequantized = {o.name for op in block.operations if op.type.startswith("constexpr")
                       for o in op.outputs}
        for op in block.operations:
            if op.type not in ("conv", "linear", "matmul") or "weight" not in op.inputs:
                continue
            weights = [a.name for a in op.inputs["weight"].arguments]
            kind = "quantized" if any(w in dequantized for w in weights) else "float"
            result[kind].append(f"{op.type}:{op.outputs[0].name}")
    return result


def _quantize_w8(mlmodel: Any) -> tuple[Any, dict]:
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel",
        weight_threshold=W8_WEIGHT_THRESHOLD))
    quantized = cto.linear_quantize_weights(mlmodel, config=config)
    ops = _weight_ops(quantized)
    details = {
        "quantization": "int8 linear symmetric per-channel weights (coremltools "
                        "linear_quantize_weights), fp16 compute",
        "weight_threshold": W8_WEIGHT_THRESHOLD,
        "quantized_ops": ops["quantized"],
        "float_weight_ops": ops["float"],   # weights with <= weight_threshold elements
    }
    return quantized, details


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.mlpackage folder) for recipe fp16 or w8."""
    with quiet_toolchains():
        return _export(job)


def _export(job: ExportJob) -> ExportResult:
    import torch

    check_recipe("coreml", job.recipe, RECIPES)
    out = prepare_out(Path(job.out_path))
    details: dict = {"toolchain": f"coremltools {version('coremltools')}",
                     "torch": version("torch"), "minimum_deployment_target": "iOS17",
                     "compute_precision": "float16"}
    with torch.no_grad():
        mlmodel = convert_fp16(job.module, job.example)
    if job.recipe == "w8":
        mlmodel, qdetails = _quantize_w8(mlmodel)
        details.update(qdetails)
    else:
        details["quantization"] = "none (float16 weights and compute)"
    mlmodel.save(str(out))
    spec = mlmodel.get_spec()
    details["inputs"] = [i.name for i in spec.description.input]
    details["outputs"] = [o.name for o in spec.description.output]
    return ExportResult(path=out, details=details, delegation=None)
