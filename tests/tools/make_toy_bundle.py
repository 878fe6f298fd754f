"""Write a tiny but real bundle (ExecuTorch/XNNPACK .pte, LiteRT .tflite, Core ML .mlpackage
of a 4-layer conv net on 3x8x8 inputs) in ~15 s, for reliability tests and fuzzing:

    python tests/tools/make_toy_bundle.py OUT_DIR [--no-coreml]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def toy_module():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 3)).eval()


def manifest_for(artifacts: list[dict]) -> dict:
    return {
        "schema_version": 2, "created": "2026-01-01T00:00:00+00:00", "target": "desktop",
        "model": {"name": "toy", "task": "classification", "params": 251, "macs": 14000,
                  "weights_file": None, "weights_sha256": None},
        "input": {"name": "input", "shape": [1, 3, 8, 8], "dtype": "float32", "layout": "NCHW",
                  "color": "RGB", "range": [0.0, 1.0], "mean": [0.5, 0.5, 0.5],
                  "std": [0.25, 0.25, 0.25], "normalize_in_graph": False, "resize": "bilinear"},
        "outputs": [{"name": "logits", "shape": [1, 3], "dtype": "float32", "meaning": "logits"}],
        "labels_file": "labels.txt",
        "postprocess": {"kind": "classify", "top_k": 2, "softmax": True},
        "golden": {"inputs": [], "reference": []},
        "artifacts": artifacts,
        "toolchain": {"torch": "toy"},
    }


def toy_formats(no_coreml: bool = False) -> list:
    """One format per registered runtime, the first the formats table lists for it, so a new
    runtime gets its toy artifact (and its damage tests) without an edit here."""
    from sdk_builder.formats import FORMATS

    first: dict = {}
    for fmt in FORMATS:
        first.setdefault(fmt.runtime, fmt)
    return [f for f in first.values() if not (no_coreml and "coremltools" in f.toolchain)]


def main() -> None:
    import torch

    from runtime_py import manifest as mf
    from sdk_builder.bundle import artifact_entry
    from sdk_builder.formats import ExportJob

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--no-coreml", action="store_true")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    module, example = toy_module(), torch.zeros(1, 3, 8, 8)
    entries = []
    for fmt in toy_formats(args.no_coreml):
        recipe = fmt.recipes[0]
        job = ExportJob(module=module, examples=(example,), recipe=recipe,
                        out_path=out / fmt.artifact_name("toy", recipe))
        entries.append(artifact_entry(fmt, recipe, fmt.export(job)))
    (out / "labels.txt").write_text("a\nb\nc\n", encoding="utf-8")
    mf.write(out, manifest_for(entries))


if __name__ == "__main__":
    sys.exit(main())
