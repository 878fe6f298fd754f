"""LiteRT (TFLite) flatbuffer with float32 inputs/outputs: recipes fp32, fp16,
int8-dynamic, int8-static and w8.

fp32: litert_torch.convert(module, examples), its flatbuffer bytes written from Python.
fp16, int8-dynamic, w8: the fp32 flatbuffer post-processed by ai-edge-quantizer (data-free):
  fp16          weight-only FLOAT_CASTING to float16 (DEQUANTIZE to float32, float compute)
  int8-dynamic  recipe.dynamic_wi8_afp32(): int8 per-channel weights, activations quantized
                at run time by the hybrid kernels
  w8            recipe.weight_only_wi8_afp32(): int8 per-channel weights, DEQUANTIZE to
                float32, float compute
  All keep float32 model inputs/outputs (the quantizer only touches weight tensors).
int8-static: PT2E with litert_torch's PT2EQuantizer (per-channel symmetric int8 weights,
static per-tensor int8 activations; hardswish rewritten as x * relu6(x + 3) / 6 first, because
LiteRT's XNNPACK delegate takes int8 ADD/RELU6/MUL but not int8 HARD_SWISH: on SkipNet-M this
took delegation from 89% in 22 partitions to 99.6% in 2 and int8 from 0.65x to 1.32x the
fp32 speed here, at the price of two more int8 roundings per activation: logit SNR on the
1,000 held-out digits 29.0 -> 22.3 dB, accuracy unchanged), calibrated, converted with
fold_quantize=False (the
LiteRT converter turns the q/dq pairs into int8 kernels itself), then converted with
QuantConfig(pt2e_quantizer=...) so the converter runs in STATIC q/dq mode.

Trap (litert-torch 0.10.0): by default the converter folds the input quantize and output
dequantize into the model signature, so the .tflite takes and returns *int8* tensors.
Its config has no inference_input_type; the converter's `strict_qdq_mode` keeps the q/dq
nodes where the graph has them (QUANTIZE after the float32 input, DEQUANTIZE before the
float32 output), but litert-torch does not expose it, so we set it for the duration of
the conversion (see _strict_qdq). The exporter re-checks the I/O dtypes afterwards.

Trap (litert-torch 0.10.0): before annotating, its quantizer turns the Python int operands
of add/mul (`x * 2`) into int64 tensor constants and observes them; calibration then fails
('"histogram_cpu" not implemented for 'Long''). pt2e_quantize drops every spec on a
non-float value (quantize.float_only); the converter folds those constants as it should.

Checked and *not* a problem with litert-torch 0.10.0 / ai-edge-litert 2.3.0: bilinear
interpolation with align_corners=True converts to RESIZE_BILINEAR and runs (max abs
error 6e-8 on an 8x8 -> 16x16 test); the builder's verification runs every artifact in
the LiteRT runtime anyway.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from runtime_py.errors import PocketError
from sdk_builder.formats import ExportJob, ExportResult
from sdk_builder.formats._common import version
from sdk_builder.quantize.pt2e import (calibration_for, decompose_hardswish, keep_float,
                                  present_types, pt2e_quantize)

AEQ_RECIPES = ("fp16", "int8-dynamic", "w8")     # post-processed with ai-edge-quantizer


@contextlib.contextmanager
def _strict_qdq() -> Iterator[None]:
    """Make litert-torch's converter run with strict_qdq_mode=True (float32 model I/O)."""
    from litert_torch._convert import litert_converter

    ext = litert_converter.converter_api_ext
    original = ext.ConvertToTFLConfig

    def strict_config() -> Any:
        config = original()
        config.strict_qdq_mode = True
        return config

    ext.ConvertToTFLConfig = strict_config
    try:
        yield
    finally:
        ext.ConvertToTFLConfig = original


def tflite_io(path: Path) -> dict:
    """Input/output names, shapes and dtypes of a .tflite (via the LiteRT Interpreter)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))

    def rows(details: list) -> list[dict]:
        return [{"name": d["name"], "shape": [int(v) for v in d["shape"]],
                 "dtype": d["dtype"].__name__} for d in details]

    return {"inputs": rows(interp.get_input_details()),
            "outputs": rows(interp.get_output_details()),
            "ops": sorted({o["op_name"] for o in interp._get_ops_details()})}


def tflite_counts(path: Path) -> dict:
    """Op counts and constant-tensor counts by dtype of a .tflite (LiteRT Interpreter)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    ops: dict[str, int] = {}
    for op in interp._get_ops_details():
        ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    dtypes: dict[str, int] = {}
    for t in interp.get_tensor_details():
        name = t["dtype"].__name__
        dtypes[name] = dtypes.get(name, 0) + 1
    return {"op_counts": dict(sorted(ops.items())), "tensor_dtypes": dict(sorted(dtypes.items()))}


def _aeq_recipe(recipe: str) -> tuple[Any, str]:
    """(ai-edge-quantizer recipe, description) for a post-processing recipe."""
    from ai_edge_quantizer import recipe as aeq_recipe
    from ai_edge_quantizer import recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    if recipe == "fp16":
        manager = recipe_manager.RecipeManager()
        manager.add_weight_only_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED,
                                       num_bits=16, algorithm_key=AlgorithmName.FLOAT_CASTING)
        return manager.get_quantization_recipe(), (
            "ai-edge-quantizer weight-only FLOAT_CASTING: float16 weights, DEQUANTIZE to "
            "float32, float32 compute (GPU delegates may run fp16); float32 I/O")
    if recipe == "int8-dynamic":
        return aeq_recipe.dynamic_wi8_afp32(), (
            "ai-edge-quantizer dynamic_wi8_afp32: int8 per-channel symmetric weights, "
            "activations quantized to int8 at run time (hybrid kernels); float32 I/O")
    return aeq_recipe.weight_only_wi8_afp32(), (
        "ai-edge-quantizer weight_only_wi8_afp32: int8 per-channel symmetric weights, "
        "DEQUANTIZE to float32, float32 compute; float32 I/O")


def _post_quantize(float_path: Path, recipe: str, out: Path) -> dict:
    """Quantize the fp32 flatbuffer at `float_path` into `out`; details."""
    from ai_edge_quantizer import quantizer

    aeq, text = _aeq_recipe(recipe)
    q = quantizer.Quantizer(str(float_path), aeq)
    result = q.quantize(enable_progress_report=False)
    result.export_model(str(out), overwrite=True)
    return {"quantization": text, "quantizer": f"ai-edge-quantizer {version('ai-edge-quantizer')}",
            "fp32_size_bytes": float_path.stat().st_size}


def _write_flatbuffer(model: Any, path: Path) -> None:
    """Write the converted model from Python: litert-torch's native writer exit(1)s the
    whole process ("LLVM ERROR: IO failure on output stream") when the disk is full,
    where Python raises an OSError the builder turns into a clean error."""
    path.write_bytes(model.model_content())


def _convert_int8_static(job: ExportJob) -> tuple[Any, dict, Any]:
    """PT2E int8 with litert-torch's quantizer: (converted model, details, PT2E twin)."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    details: dict = {}
    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    kept_types = present_types(job.module, job.keep_float)
    if kept_types:
        details["kept_float_modules"] = keep_float(quantizer, kept_types, by_name=True)
    quantized, samples = pt2e_quantize(job.module.eval(), job.examples, quantizer,
                                       calibration_for(job), fold_quantize=False,
                                       rewrites=(decompose_hardswish,))
    with _strict_qdq():
        model = litert_torch.convert(quantized, tuple(job.examples),
                                     quant_config=QuantConfig(pt2e_quantizer=quantizer))
    details.update({
        "quantization": "PT2E litert PT2EQuantizer: int8 per-channel symmetric weights, "
                        "int8 per-tensor static activations (hardswish as "
                        "x*relu6(x+3)/6), float32 I/O",
        "calibration_samples": samples})
    return model, details, quantized


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.tflite); Format.export has checked the recipe and prepared the path."""
    import litert_torch
    import torch

    out = Path(job.out_path)
    with torch.no_grad():
        if job.recipe == "int8-static":
            model, details, twin = _convert_int8_static(job)
        else:    # fp32, and the float model the post-processing recipes start from
            model = litert_torch.convert(job.module.eval(), tuple(job.examples))
            details, twin = {"quantization": "none (float32)"}, None
    if job.recipe in AEQ_RECIPES:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            float_path = Path(tmp) / "fp32.tflite"
            _write_flatbuffer(model, float_path)
            details.update(_post_quantize(float_path, job.recipe, out))
    else:
        _write_flatbuffer(model, out)
    io = tflite_io(out)
    bad = [t for t in io["inputs"] + io["outputs"] if t["dtype"] != "float32"]
    if bad:
        raise PocketError(f"LiteRT conversion produced non-float32 I/O ({bad[0]['name']}: "
                          f"{bad[0]['dtype']}); report this model to the Pocket Vision team")
    details.update({"inputs": io["inputs"], "outputs": io["outputs"], "tflite_ops": io["ops"],
                    **tflite_counts(out)})
    from runtime_py.runtimes.litert.coverage import litert_delegation   # which ops XNNPACK takes at run time

    return ExportResult(path=out, details=details, delegation=litert_delegation(out),
                        quantized_module=twin)
