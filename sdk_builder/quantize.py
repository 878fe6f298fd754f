"""Shared PT2E post-training quantization (torchao.quantization.pt2e).

Both the ExecuTorch/XNNPACK and the LiteRT exporters quantize the same way: capture the
model with torch.export, insert observers for a backend quantizer, calibrate on the
model's calibration data, convert to a graph with quantize/dequantize pairs. Only the
quantizer (and whether quantize ops are folded into int8 weights) differs per format.
torch/torchao are imported inside the functions so importing this module is cheap.
"""
from __future__ import annotations

from typing import Any, Iterable

from runtime_py.errors import UsageError


def _batches_like(tensor: Any, example: Any) -> list[Any]:
    """`tensor` as inputs shaped like `example`: a batch of N is split into N samples
    when the model was captured with batch 1 (torch.export specialises on the shape)."""
    import torch

    t = torch.as_tensor(tensor).to(dtype=example.dtype)
    if t.dim() == example.dim() - 1:
        t = t.unsqueeze(0)
    if t.dim() != example.dim() or tuple(t.shape[1:]) != tuple(example.shape[1:]):
        raise UsageError(f"calibration tensor of shape {tuple(t.shape)} does not match the "
                         f"model input {tuple(example.shape)}; fix the model's calibration data")
    if t.shape[0] == example.shape[0]:
        return [t]
    if example.shape[0] == 1:
        return list(t.split(1, dim=0))
    raise UsageError(f"calibration batch {t.shape[0]} does not fit the exported batch size "
                     f"{example.shape[0]}")


def pt2e_quantize(module: Any, example: Any, quantizer: Any,
                  calibration_iter: Iterable[Any], *,
                  fold_quantize: bool = True) -> tuple[Any, int]:
    """Quantize `module` with a PT2E `quantizer`, calibrating on `calibration_iter`.

    Returns (quantized torch.fx.GraphModule with float inputs/outputs and q/dq nodes,
    number of calibration samples seen). `fold_quantize=False` keeps float weights
    behind quantize/dequantize pairs (what the LiteRT converter expects).
    """
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    module = module.eval()
    captured = torch.export.export(module, (example,)).module()
    prepared = prepare_pt2e(captured, quantizer)
    samples = 0
    with torch.no_grad():
        for item in calibration_iter:
            if isinstance(item, (tuple, list)):   # (inputs, target) pairs: take the inputs
                item = item[0]
            for batch in _batches_like(item, example):
                prepared(batch)
                samples += 1
    if samples == 0:
        raise UsageError("int8-static needs calibration data but the calibration set is empty; "
                         "give the model a calibration function or pick a float recipe")
    quantized = convert_pt2e(prepared, fold_quantize=fold_quantize)
    return quantized, samples


def calibration_for(job: Any) -> Iterable[Any]:
    """The job's calibration iterable, or a UsageError saying how to get one."""
    if job.calibration is None:
        raise UsageError(f"recipe '{job.recipe}' needs calibration data; the model has no "
                         "calibration function (add one to its ModelSpec or pick fp32)")
    return job.calibration()


def snr_db(reference: Any, test: Any) -> float:
    """Signal-to-noise ratio of `test` against `reference` in dB (numpy arrays)."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float64)
    noise = ref - np.asarray(test, dtype=np.float64)
    signal_power = float(np.mean(ref * ref))
    noise_power = float(np.mean(noise * noise))
    if noise_power == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(max(signal_power, 1e-30) / noise_power))
