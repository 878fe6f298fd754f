"""Core ML ML program (.mlpackage, iOS 17): recipes fp16, w8, palettize-6bit,
palettize-4bit and prune-50.

torch.export -> run_decompositions({}) -> coremltools.convert (mlprogram, iOS17, FLOAT16
compute). The other recipes then compress the fp16 weights with coremltools.optimize.coreml
(data-free, runs on Linux):
  w8              linear_quantize_weights: int8 symmetric per-output-channel
  palettize-Nbit  palettize_weights: per-tensor k-means look-up table of 2^N fp16 values
  prune-50        prune_weights: the 50 % smallest-magnitude weights of each tensor zeroed
                  (stored sparse: bit mask + non-zero values)
Only weights with more than WEIGHT_THRESHOLD elements are compressed (coremltools'
default 2048 skips most convolutions of phone-sized models). Compression applies to the
weights as converted, i.e. with BatchNorm already folded into the convolutions.

ExportJob.keep_float (module classes, e.g. a content router): those modules' ops compute
in fp32 inside the fp16 program (FP16ComputePrecision op_selector; coremltools inserts the
casts), and their float32 constants are left out of weight compression. On the Neural
Engine, which has no fp32, Core ML runs such ops on the CPU/GPU instead.

Not offered: activation quantization (linear_quantize_activations, a8w8) and
calibrated/sensitivity-based compression (e.g. GPTQ-style, per-layer palette search)
need Core ML predictions on calibration data, which only run on macOS.
Off macOS the builder verifies the package by running its ML program in runtime_py's own
interpreter (runtime_py.runtimes.coreml); only when the interpreter lacks one of its ops does
sdk_builder.quantize.estimate estimate the accuracy in PyTorch with the same constants.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk_builder.formats import ExportJob, ExportResult, get_format

RECIPES = get_format("coreml").recipes     # the formats table is the one list
INPUT_NAME = "input"
OUTPUT_PREFIX = "output"
# One place for each compression constant (sdk_builder.quantize.estimate imports them).
WEIGHT_THRESHOLD = 64        # elements; weights with <= this many stay fp16
W8_WEIGHT_THRESHOLD = WEIGHT_THRESHOLD
W8_LINEAR_CONFIG = {"mode": "linear_symmetric", "dtype": "int8", "granularity": "per_channel",
                    "weight_threshold": W8_WEIGHT_THRESHOLD}   # coremltools OpLinearQuantizerConfig
PALETTE_BITS = {"palettize-6bit": 6, "palettize-4bit": 4}
PALETTE_MODE = "kmeans"      # per-tensor 1-D k-means LUT
PRUNE_SPARSITY = {"prune-50": 0.5}
COMPRESSED_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale",
                  "constexpr_lut_to_dense", "constexpr_sparse_to_dense")


def _fp16_selector(ep: Any, keep_float: tuple) -> Any:
    """A coremltools op_selector that is False (compute in fp32) for the MIL ops converted
    from nodes inside modules of the `keep_float` classes.

    MIL op names do not always follow the node names (clamp -> clip_0), but every op
    converted from a torch.export node carries that node's stack trace as its
    EXIR_STACK_TRACE scope, and the trace is the node's identity here."""
    from coremltools.converters.mil.mil.scope import ScopeSource

    from sdk_builder.quantize.pt2e import module_type_name

    names = {module_type_name(cls) for cls in keep_float}
    traces = {node.meta["stack_trace"] for node in ep.graph.nodes
              if node.op == "call_function" and node.meta.get("stack_trace")
              and any(kind in names
                      for _, kind in (node.meta.get("nn_module_stack") or {}).values())}

    def selector(op: Any) -> bool:
        return not any(t in traces for t in op.scopes.get(ScopeSource.EXIR_STACK_TRACE, ()))

    return selector


def convert_fp16(module: Any, examples: tuple, keep_float: tuple = (),
                 input_names: tuple[str, ...] = (INPUT_NAME,)) -> Any:
    """An fp16 ML program (coremltools MLModel, not yet saved) for iOS 17; ops of modules
    whose class is in `keep_float` compute in fp32 (casts are inserted around them)."""
    import coremltools as ct
    import numpy as np
    import torch

    ep = torch.export.export(module.eval(), tuple(examples))
    ep = ep.run_decompositions({})
    n_out = len(ep.graph_signature.user_outputs)
    precision = ct.precision.FLOAT16 if not keep_float else \
        ct.transform.FP16ComputePrecision(op_selector=_fp16_selector(ep, keep_float))
    return ct.convert(
        ep,
        # float32 I/O stated explicitly: with an iOS17 target and FLOAT16 precision
        # coremltools otherwise makes the model's inputs and outputs float16.
        inputs=[ct.TensorType(name=name, shape=tuple(x.shape), dtype=np.float32)
                for name, x in zip(input_names, examples)],
        outputs=[ct.TensorType(name=f"{OUTPUT_PREFIX}{i}", dtype=np.float32)
                 for i in range(n_out)],
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        compute_precision=precision,
        skip_model_load=True,
    )


def _float32_op_count(mlmodel: Any) -> int:
    """Non-const, non-cast ops of the main function that output float32."""
    from coremltools.proto import MIL_pb2

    fp32 = MIL_pb2.DataType.Value("FLOAT32")
    spec = mlmodel.get_spec()
    return sum(1 for block in spec.mlProgram.functions["main"].block_specializations.values()
               for op in block.operations if op.type not in ("const", "cast")
               and any(o.type.tensorType.dataType == fp32 for o in op.outputs))


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


def _float32_consts(mlmodel: Any) -> list[str]:
    """Names of float32 const ops: after a mixed-precision conversion, the constants of the
    ops kept in fp32 (an all-fp16 program has none)."""
    from coremltools.converters.mil.mil import types

    return [op.name for op in mlmodel._mil_program.functions["main"].operations
            if op.op_type == "const" and op.outputs[0].dtype == types.fp32]


def _compress(mlmodel: Any, recipe: str, skip: tuple[str, ...] = ()) -> tuple[Any, dict]:
    """Apply the data-free weight compression of `recipe` (not fp16); (model, details).
    Constants named in `skip` stay uncompressed (e.g. the 0/1 matrices of a router kept
    fp32, which pruning or int8 rounding would break)."""
    import coremltools.optimize.coreml as cto

    def config(op_config: Any) -> Any:
        return cto.OptimizationConfig(global_config=op_config,
                                      op_name_configs={n: None for n in skip} or None)

    if recipe == "w8":
        op_config = cto.OpLinearQuantizerConfig(**W8_LINEAR_CONFIG)
        compressed = cto.linear_quantize_weights(
            mlmodel, config=config(op_config))
        details = {"quantization": "int8 linear symmetric per-channel weights (coremltools "
                                   "linear_quantize_weights), fp16 compute"}
    elif recipe in PALETTE_BITS:
        nbits = PALETTE_BITS[recipe]
        op_config = cto.OpPalettizerConfig(nbits=nbits, mode=PALETTE_MODE,
                                           granularity="per_tensor",
                                           weight_threshold=WEIGHT_THRESHOLD)
        compressed = cto.palettize_weights(
            mlmodel, config=config(op_config))
        details = {"quantization": f"{nbits}-bit palettization: per-tensor {PALETTE_MODE} "
                                   f"look-up table of {2 ** nbits} fp16 values (coremltools "
                                   "palettize_weights), fp16 compute",
                   "palette_size": 2 ** nbits}
    elif recipe in PRUNE_SPARSITY:
        op_config = cto.OpMagnitudePrunerConfig(target_sparsity=PRUNE_SPARSITY[recipe],
                                                weight_threshold=WEIGHT_THRESHOLD)
        compressed = cto.prune_weights(
            mlmodel, config=config(op_config))
        details = {"quantization": f"magnitude pruning to {PRUNE_SPARSITY[recipe]:.0%} sparsity "
                                   "per tensor (coremltools prune_weights), sparse fp16 "
                                   "storage, fp16 compute",
                   "target_sparsity": PRUNE_SPARSITY[recipe],
                   "warning": "data-free pruning without sparse fine-tuning can destroy "
                              "accuracy; check the evaluation in the report"}
    else:  # pragma: no cover - Format.export refuses recipes the table does not list
        raise ValueError(recipe)
    ops = _weight_ops(compressed)
    details.update({"weight_threshold": WEIGHT_THRESHOLD,
                    "quantized_ops": ops["quantized"],
                    "float_weight_ops": ops["float"],   # weights with <= threshold elements
                    **_compression_numbers(compressed)})
    return compressed, details


def compressed_weights(mlmodel: Any) -> dict[str, Any]:
    """{constexpr op name: dense float32 numpy weight} of a compressed ML program, decoded
    by coremltools' own constexpr value inference (for checks and the emulation)."""
    import numpy as np

    weights = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type in COMPRESSED_OPS:
            weights[op.name] = np.asarray(op.materialized_val_inference(), dtype=np.float32)
    return weights


def _compression_numbers(mlmodel: Any) -> dict:
    """Counts of compressed weight ops by kind, unique values (palettes) and sparsity."""
    import numpy as np

    counts: dict[str, int] = {}
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type in COMPRESSED_OPS:
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
    weights = compressed_weights(mlmodel)
    total = sum(w.size for w in weights.values())
    zeros = sum(int(np.count_nonzero(w == 0)) for w in weights.values())
    return {"compressed_weight_ops": counts,
            "compressed_weights": int(total),
            "max_unique_values_per_tensor": max((len(np.unique(w)) for w in weights.values()),
                                                default=0),
            "sparsity_of_compressed": round(zeros / total, 4) if total else 0.0}


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.mlpackage folder); Format.export has checked the recipe and
    prepared the path."""
    import torch

    from sdk_builder.quantize.pt2e import module_type_name, present_types

    out = Path(job.out_path)
    details: dict = {"minimum_deployment_target": "iOS17",
                     "compute_precision": "float16"}
    kept = present_types(job.module, job.keep_float)
    with torch.no_grad():
        mlmodel = convert_fp16(job.module, job.examples, kept, job.input_names)
    if kept:
        details["kept_float_modules"] = [module_type_name(c) for c in kept]
        details["float32_ops"] = _float32_op_count(mlmodel)
        details["compute_precision"] = "float16; float32 in kept_float_modules"
    if job.recipe != "fp16":
        skip = tuple(_float32_consts(mlmodel)) if kept else ()
        mlmodel, qdetails = _compress(mlmodel, job.recipe, skip)
        if skip:
            qdetails["uncompressed_float32_consts"] = len(skip)
        details.update(qdetails)
    else:
        details["quantization"] = "none (float16 weights and compute)"
    mlmodel.save(str(out))
    spec = mlmodel.get_spec()
    details["inputs"] = [i.name for i in spec.description.input]
    details["outputs"] = [o.name for o in spec.description.output]
    return ExportResult(path=out, details=details, delegation=None)
