"""Verify artifacts with runtime_py itself, so what is verified is what users run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from runtime_py import manifest as mf
from runtime_py.backends import can_run
from runtime_py.errors import PocketError
from runtime_py.session import Session, check_artifacts
from sdk_builder.bundle import read_tensor, write_tensor
from sdk_builder.metrics import TASK_METRICS, json_number, merge_parity, parity

# An fp32 artifact must reproduce PyTorch to this max abs error on the golden inputs.
FP32_MAX_ABS_ERROR = 1e-4
FLOAT_RECIPES = ("fp32",)
EVAL_BATCH = 100   # eager reference only; artifacts run one sample at a time, as on a phone


class VerificationError(PocketError):
    """An artifact that does not compute what PyTorch computes."""


@dataclass
class Reference:
    """PyTorch's answers that every artifact is compared with."""

    golden_inputs: list[np.ndarray]
    golden_outputs: list[list[np.ndarray]]      # [case][output]
    eval_inputs: np.ndarray | None = None       # [N, *input.shape[1:]]
    eval_targets: np.ndarray | None = None
    eval_logits: np.ndarray | None = None       # PyTorch's first output per sample
    metric: str | None = None


def eager_outputs(module, x: np.ndarray) -> list[np.ndarray]:
    """The eager model's float32 outputs for one input batch."""
    import torch

    with torch.no_grad():
        out = module(torch.from_numpy(x))
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.detach().numpy().astype(np.float32) for o in outs]


def eager_logits(module, inputs: np.ndarray) -> np.ndarray:
    """The first output for every sample of `inputs`, computed in batches."""
    return np.concatenate([eager_outputs(module, inputs[i:i + EVAL_BATCH])[0]
                           for i in range(0, len(inputs), EVAL_BATCH)])


def torch_reference(module, golden_inputs: list[np.ndarray], evaluation=None) -> Reference:
    """Run the eager model on the golden inputs and the evaluation split."""
    ref = Reference(golden_inputs, [eager_outputs(module, x) for x in golden_inputs])
    if evaluation is not None:
        ref.eval_inputs = evaluation.inputs.numpy().astype(np.float32)
        ref.eval_targets = evaluation.targets.numpy()
        ref.metric = evaluation.metric
        ref.eval_logits = eager_logits(module, ref.eval_inputs)
    return ref


def _score(logits: np.ndarray, ref: Reference) -> dict:
    """Task metric of `logits` next to PyTorch's, and top-1 agreement with PyTorch."""
    metric = TASK_METRICS[ref.metric]
    torch_value, art_value = metric(ref.eval_logits, ref.eval_targets), metric(logits, ref.eval_targets)
    agree = float(np.mean(np.argmax(logits, -1) == np.argmax(ref.eval_logits, -1)))
    return {"samples": int(len(logits)), "metric": ref.metric, "pytorch": torch_value,
            "artifact": art_value, "drop_points": 100.0 * (torch_value - art_value),
            "top1_agreement": agree}


def _golden_parity(session: Session, stage: Path, entry: dict, ref: Reference) -> dict:
    items, files = [], []
    for i, x in enumerate(ref.golden_inputs):
        outs = session.run_raw(x)
        row = []
        for j, (out, want) in enumerate(zip(outs, ref.golden_outputs[i])):
            items.append(parity(want, out))
            name = f"golden/{entry['file']}.in{i}.out{j}.bin"
            write_tensor(stage / name, out)
            row.append(name)
        files.append(row)
    entry["golden_outputs"] = files
    return merge_parity(items)


def _evaluation(session: Session, ref: Reference) -> dict:
    outs = np.concatenate([session.run_raw(ref.eval_inputs[i:i + 1])[0]
                           for i in range(len(ref.eval_inputs))])
    return _score(outs, ref)


def verify_runnable(stage: Path, manifest: dict, entry: dict, ref: Reference) -> None:
    """Run golden inputs and the evaluation split; fill entry['verification']."""
    session = Session(mf.resolve(stage, entry["file"]), bundle=stage, manifest=manifest,
                      entry=entry, threads=1)
    golden = _golden_parity(session, stage, entry, ref)
    result = {"status": "passed", "golden": {k: json_number(v) for k, v in golden.items()}}
    if ref.eval_inputs is not None:
        result["evaluation"] = _evaluation(session, ref)
    if entry["recipe"] in FLOAT_RECIPES and golden["max_abs_error"] > FP32_MAX_ABS_ERROR:
        result["status"] = "failed"
        result["reason"] = (f"max abs error {golden['max_abs_error']:.2e} vs PyTorch exceeds "
                            f"{FP32_MAX_ABS_ERROR:.0e} for an fp32 artifact")
    entry["verification"] = result


def _estimated_evaluation(module, recipe: str, ref: Reference) -> dict | None:
    """The task metric of the PyTorch model with its weights compressed as `recipe` does,
    for artifacts this machine cannot run (Core ML)."""
    from sdk_builder.emulate import emulate_weights

    if ref.eval_inputs is None or module is None:
        return None
    logits = eager_logits(emulate_weights(module, recipe), ref.eval_inputs)
    return {**_score(logits, ref), "estimated": True,
            "how": "PyTorch with the weights compressed as the recipe does (Core ML prediction needs macOS)"}


def verify_structure(stage: Path, manifest: dict, entry: dict, ref: Reference | None = None,
                     module=None) -> None:
    """For artifacts this machine cannot run: check what can be checked without running."""
    import importlib

    describe = importlib.import_module(f"runtime_py.backends.{entry['runtime']}").describe
    structure = describe(mf.resolve(stage, entry["file"]))
    problems = []
    if entry["backend"] == "coreml" and entry["runtime"] == "executorch":
        if "CoreMLBackend" not in structure.get("delegates", []):
            problems.append("the program holds no Core ML delegate")
    elif entry["runtime"] == "coreml":
        want = [list(manifest["input"]["shape"])] + [list(o["shape"]) for o in manifest["outputs"]]
        got = [list(i["shape"]) for i in structure.get("inputs", [])] + \
              [list(o["shape"]) for o in structure.get("outputs", [])]
        if got != want:
            problems.append(f"input/output shapes {got} differ from the manifest's {want}")
    entry["golden_outputs"] = []
    entry["verification"] = {
        "status": "failed" if problems else "structure-only", "structure": structure,
        "reason": "; ".join(problems) or "cannot run here: needs an Apple OS; checked the "
                                         "file's inputs, outputs and delegates only"}
    estimate = _estimated_evaluation(module, entry["recipe"], ref) if ref and not problems else None
    if estimate:
        entry["verification"]["evaluation"] = estimate


def verify_artifact(stage: Path, manifest: dict, entry: dict, ref: Reference, module=None) -> None:
    """Run the artifact here if this machine can; otherwise check its structure and
    estimate its task metric in PyTorch."""
    if can_run(entry):
        verify_runnable(stage, manifest, entry, ref)
    else:
        verify_structure(stage, manifest, entry, ref, module)


def reverify_bundle(bundle: Path, threads: int = 1) -> list[dict]:
    """`pocket verify`: sha256 of every artifact, then golden inputs vs the recorded outputs."""
    manifest = mf.read(bundle)
    check_artifacts(bundle, manifest)
    inputs = [read_tensor(mf.resolve(bundle, p), manifest["input"]["shape"])
              for p in manifest["golden"]["inputs"]]
    shapes = [o["shape"] for o in manifest["outputs"]]
    results = []
    for entry in manifest["artifacts"]:
        if not can_run(entry) or not entry["golden_outputs"]:
            results.append({"file": entry["file"], "status": "sha256 ok; not runnable here"})
            continue
        session = Session(mf.resolve(bundle, entry["file"]), bundle=bundle, manifest=manifest,
                          entry=entry, threads=threads)
        worst = 0.0
        for x, files in zip(inputs, entry["golden_outputs"]):
            for out, path, shape in zip(session.run_raw(x), files, shapes):
                want = read_tensor(mf.resolve(bundle, path), shape)
                worst = max(worst, parity(want, out)["max_abs_error"])
        scale = max(float(np.abs(read_tensor(mf.resolve(bundle, entry["golden_outputs"][0][0]),
                                             shapes[0])).max()), 1.0)
        if worst > 1e-5 * scale:
            raise VerificationError(f"{entry['file']} no longer reproduces its golden outputs "
                                    f"(max abs error {worst:.2e}); rebuild the bundle")
        results.append({"file": entry["file"], "status": "ok", "max_abs_error": worst})
    return results
