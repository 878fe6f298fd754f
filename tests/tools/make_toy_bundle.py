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
        "schema_version": 1, "created": "2026-01-01T00:00:00+00:00", "target": "desktop",
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


def entry(path: Path, fmt: str, backend: str, runtime: str) -> dict:
    from runtime_py.integrity import sha256_of, size_of

    return {"file": path.name, "format": fmt, "backend": backend, "runtime": runtime,
            "recipe": "fp32", "sha256": sha256_of(path), "size_bytes": size_of(path),
            "golden_outputs": [], "verification": {"status": "structure-only"}}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--no-coreml", action="store_true")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    module, example = toy_module(), torch.zeros(1, 3, 8, 8)
    entries = []

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.export(module, (example,))
    program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    (out / "toy.xnnpack.fp32.pte").write_bytes(program.buffer)
    entries.append(entry(out / "toy.xnnpack.fp32.pte", "executorch-xnnpack", "xnnpack", "executorch"))

    import litert_torch

    litert_torch.convert(module, (example,)).export(str(out / "toy.litert.fp32.tflite"))
    entries.append(entry(out / "toy.litert.fp32.tflite", "litert", "litert", "litert"))

    if not args.no_coreml:
        import coremltools as ct

        traced = torch.jit.trace(module, example)
        ml = ct.convert(traced, inputs=[ct.TensorType(name="input", shape=(1, 3, 8, 8))],
                        convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17)
        ml.save(str(out / "toy.coreml.fp16.mlpackage"))
        entries.append(entry(out / "toy.coreml.fp16.mlpackage", "coreml", "coreml", "coreml"))

    (out / "labels.txt").write_text("a\nb\nc\n", encoding="utf-8")
    from runtime_py import manifest as mf

    mf.write(out, manifest_for(entries))


if __name__ == "__main__":
    sys.exit(main())
