"""LiteRT (TFLite) flatbuffer with float32 inputs/outputs: recipes fp32 and int8-static.

fp32: litert_torch.convert(module, (example,)).export(path).
int8-static: PT2E with litert_torch's PT2EQuantizer (per-channel symmetric int8 weights,
static per-tensor int8 activations), calibrated, converted with fold_quantize=False (the
LiteRT converter turns the q/dq pairs into int8 kernels itself), then converted with
QuantConfig(pt2e_quantizer=...) so the converter runs in STATIC q/dq mode.

Trap (litert-torch 0.10.0): by default the converter folds the input quantize and output
dequantize into the model signature, so the .tflite takes and returns *int8* tensors.
Its config has no inference_input_type; the converter's `strict_qdq_mode` keeps the q/dq
nodes where the graph has them (QUANTIZE after the float32 input, DEQUANTIZE before the
float32 output), but litert-torch does not expose it, so we set it for the duration of
the conversion (see _strict_qdq). The exporter re-checks the I/O dtypes afterwards.

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
from sdk_builder.formats._common import check_recipe, prepare_out, quiet_toolchains, version
from sdk_builder.quantize import calibration_for, pt2e_quantize

RECIPES = ("fp32", "int8-static")


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


def export(job: ExportJob) -> ExportResult:
    """Write job.out_path (.tflite) for recipe fp32 or int8-static."""
    with quiet_toolchains():
        return _export(job)


def _export(job: ExportJob) -> ExportResult:
    import litert_torch
    import torch

    check_recipe("litert", job.recipe, RECIPES)
    out = prepare_out(Path(job.out_path))
    details: dict = {"toolchain": f"litert-torch {version('litert-torch')}",
                     "torch": version("torch")}
    module = job.module.eval()
    with torch.no_grad():
        if job.recipe == "int8-static":
            from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                              get_symmetric_quantization_config)
            from litert_torch.quantize.quant_config import QuantConfig

            quantizer = PT2EQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
            quantized, samples = pt2e_quantize(module, job.example, quantizer,
                                               calibration_for(job), fold_quantize=False)
            with _strict_qdq():
                model = litert_torch.convert(quantized, (job.example,),
                                             quant_config=QuantConfig(pt2e_quantizer=quantizer))
            details.update({
                "quantization": "PT2E litert PT2EQuantizer: int8 per-channel symmetric weights, "
                                "int8 per-tensor static activations, float32 I/O",
                "calibration_samples": samples})
        else:
            model = litert_torch.convert(module, (job.example,))
            details["quantization"] = "none (float32)"
    model.export(str(out))
    io = tflite_io(out)
    bad = [t for t in io["inputs"] + io["outputs"] if t["dtype"] != "float32"]
    if bad:
        raise PocketError(f"LiteRT conversion produced non-float32 I/O ({bad[0]['name']}: "
                          f"{bad[0]['dtype']}); report this model to the Pocket Vision team")
    details.update({"inputs": io["inputs"], "outputs": io["outputs"], "tflite_ops": io["ops"]})
    return ExportResult(path=out, details=details, delegation=None)
