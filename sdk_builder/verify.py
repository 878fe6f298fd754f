"""Verify artifacts with runtime_py itself, so what is verified is what users run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime_py import manifest as mf
from runtime_py.runtimes import can_run, check_structure, describe, is_emulated
from runtime_py.errors import PocketError, UnsupportedError
from runtime_py.session import Session, check_artifacts
from sdk_builder.bundle import read_tensor, write_tensor
from sdk_builder.quantize.parity import json_number, merge_parity, parity
from sdk_builder.quantize import recipes

# An fp32 artifact must reproduce PyTorch to this max abs error on the golden inputs.
FP32_MAX_ABS_ERROR = 1e-4
EVAL_BATCH = 100   # eager reference only; artifacts run one sample at a time, as on a phone


class VerificationError(PocketError):
    """An artifact that does not compute what PyTorch computes."""


@dataclass
class Reference:
    """PyTorch's answers that every artifact is compared with."""

    golden_inputs: list[tuple[np.ndarray, ...]]   # [case][model input]
    golden_outputs: list[list[np.ndarray]]      # [case][output]
    exact: tuple[int, ...] = ()                 # outputs that must match exactly (discrete)
    task: object = None                         # models.tasks.Task (None: raw parity only)
    eval_inputs: np.ndarray | None = None       # [N, *input.shape[1:]]
    eval_targets: np.ndarray | None = None
    eval_outputs: list[np.ndarray] | None = None   # PyTorch's outputs per sample, [output][N, ...]
    pytorch_metrics: dict | None = None

    @property
    def metric(self) -> str | None:
        return self.task.metric if self.task is not None and self.eval_inputs is not None else None

    @property
    def eval_logits(self) -> np.ndarray | None:
        """PyTorch's first output on the evaluation split."""
        return None if self.eval_outputs is None else self.eval_outputs[0]


def eager_outputs(module, *inputs: np.ndarray) -> list[np.ndarray]:
    """The eager model's float32 outputs for one batch of its inputs."""
    import torch

    with torch.no_grad():
        out = module(*(torch.from_numpy(x) for x in inputs))
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [o.detach().numpy().astype(np.float32) for o in outs]


def eager_split(module, inputs: np.ndarray) -> list[np.ndarray]:
    """Every output for every sample of `inputs`, computed in batches: [output][N, ...]."""
    batches = [eager_outputs(module, inputs[i:i + EVAL_BATCH]) for i in range(0, len(inputs), EVAL_BATCH)]
    return [np.concatenate(parts) for parts in zip(*batches)]


def eager_logits(module, inputs: np.ndarray) -> np.ndarray:
    """The first output for every sample of `inputs`."""
    return eager_split(module, inputs)[0]


def torch_reference(module, golden_inputs: list[tuple[np.ndarray, ...]], evaluation=None,
                    task=None, exact: tuple[int, ...] = ()) -> Reference:
    """Run the eager model on the golden cases and the evaluation split."""
    ref = Reference(golden_inputs, [eager_outputs(module, *case) for case in golden_inputs],
                    tuple(exact), task)
    if evaluation is not None and task is not None and task.metrics is not None:
        ref.eval_inputs = evaluation.inputs.numpy().astype(np.float32)
        ref.eval_targets = evaluation.targets.numpy()
        ref.eval_outputs = eager_split(module, ref.eval_inputs)
        ref.pytorch_metrics = task.metrics(ref.eval_logits, ref.eval_targets)
    return ref


def score(first_output: np.ndarray, ref: Reference) -> dict:
    """The task metric of an artifact's first output next to PyTorch's, the drop in points,
    and the task's agreement with PyTorch (top-1 for a classifier, per pixel for a map)."""
    task = ref.task
    values = task.metrics(first_output, ref.eval_targets)
    torch_value, art_value = ref.pytorch_metrics[task.metric], values[task.metric]
    result = {"samples": int(len(first_output)), "metric": task.metric, "pytorch": torch_value,
              "artifact": art_value, "drop_points": task.drop_points(torch_value, art_value),
              "metrics": values}
    if task.agreement is not None:
        name, agree = task.agreement
        result["agreement_name"] = name
        result["agreement"] = agree(first_output, ref.eval_logits)
    return result


def _exact_mismatches(outputs: list[np.ndarray], reference: list[np.ndarray], exact) -> int:
    """How many exact outputs (e.g. routes) differ anywhere from PyTorch's."""
    return sum(not np.array_equal(outputs[j], reference[j]) for j in exact)


def _golden_parity(session: Session, stage: Path, entry: dict, ref: Reference) -> dict:
    items, files, mismatched = [], [], 0
    for i, case in enumerate(ref.golden_inputs):
        outs = session.run_raw(*case)
        mismatched += _exact_mismatches(outs, ref.golden_outputs[i], ref.exact) > 0
        row = []
        for j, (out, want) in enumerate(zip(outs, ref.golden_outputs[i])):
            if j not in ref.exact:
                items.append(parity(want, out))
            name = f"golden/{entry['file']}.in{i}.out{j}.bin"
            write_tensor(stage / name, out)
            row.append(name)
        files.append(row)
    entry["golden_outputs"] = files
    golden = merge_parity(items)
    if ref.exact:
        golden["exact_outputs_match"] = f"{len(ref.golden_inputs) - mismatched}/{len(ref.golden_inputs)}"
    return golden


def _evaluation(session: Session, ref: Reference) -> dict:
    outputs = session.run_samples(ref.eval_inputs)
    result = score(outputs[0], ref)
    if ref.exact:
        same = [all(np.array_equal(outputs[j][i], ref.eval_outputs[j][i]) for j in ref.exact)
                for i in range(len(ref.eval_inputs))]
        result["exact_outputs_match"] = f"{sum(same)}/{len(same)}"
    return result


def exact_outputs_broken(result: dict) -> str | None:
    """Why an artifact's discrete outputs (e.g. routed patch sets) are not PyTorch's, or None."""
    for where in ("golden", "evaluation"):
        matched = (result.get(where) or {}).get("exact_outputs_match")
        if matched and matched.split("/")[0] != matched.split("/")[1]:
            return (f"its discrete outputs (e.g. routed patches) differ from PyTorch's: "
                    f"{matched} {where} inputs match")
    return None


def verify_runnable(stage: Path, manifest: dict, entry: dict, ref: Reference) -> None:
    """Run golden inputs and the evaluation split; fill entry['verification']."""
    session = Session(mf.resolve(stage, entry["file"]), bundle=stage, manifest=manifest,
                      entry=entry, threads=1)
    golden = _golden_parity(session, stage, entry, ref)
    result = {"status": "passed", "golden": {k: json_number(v) for k, v in golden.items()},
              "runtime": session.runtime_label}
    if is_emulated(entry):
        result["emulated"] = True
    if ref.metric is not None:
        result["evaluation"] = _evaluation(session, ref)
    broken = exact_outputs_broken(result)
    if recipes.recipe(entry["recipe"]).reference and golden["max_abs_error"] > FP32_MAX_ABS_ERROR:
        result["status"] = "failed"
        result["reason"] = (f"max abs error {golden['max_abs_error']:.2e} vs PyTorch exceeds "
                            f"{FP32_MAX_ABS_ERROR:.0e} for an fp32 artifact")
    elif broken:
        result["status"] = "failed"
        result["reason"] = broken
    entry["verification"] = result


def _estimated_evaluation(module, recipe: str, ref: Reference) -> dict | None:
    """The task metric of the PyTorch model with its weights compressed as the Core ML
    `recipe` does (sdk_builder.quantize.estimate), for an artifact that cannot run here."""
    from sdk_builder.quantize.estimate import compressed_twin

    if ref.metric is None or module is None:
        return None
    logits = eager_logits(compressed_twin(module, recipe), ref.eval_inputs)
    return {**score(logits, ref), "estimated": True,
            "how": "PyTorch with the weights compressed as the recipe does (the artifact "
                   "itself cannot run here)"}


def verify_structure(stage: Path, manifest: dict, entry: dict, ref: Reference | None = None,
                     module=None, why: str = "needs an Apple OS") -> None:
    """For artifacts this machine cannot run: check what can be checked without running."""
    path = mf.resolve(stage, entry["file"])
    structure = describe(entry["runtime"], path)
    problems = check_structure(entry["runtime"], structure, manifest, entry)
    entry["golden_outputs"] = []
    entry["verification"] = {
        "status": "failed" if problems else "structure-only", "structure": structure,
        "reason": "; ".join(problems) or f"cannot run here ({why}); checked the file's inputs, "
                                         "outputs and delegates only"}
    estimate = _estimated_evaluation(module, entry["recipe"], ref) if ref and not problems else None
    if estimate:
        entry["verification"]["evaluation"] = estimate


def verify_artifact(stage: Path, manifest: dict, entry: dict, ref: Reference, module=None) -> None:
    """Run the artifact here if this machine can; otherwise check its structure and
    estimate its task metric in PyTorch."""
    if not can_run(entry):
        verify_structure(stage, manifest, entry, ref, module)
        return
    try:
        verify_runnable(stage, manifest, entry, ref)
    except UnsupportedError as exc:
        if not is_emulated(entry):
            raise
        # an op outside the interpreter's coverage: the artifact is fine for Core ML itself
        verify_structure(stage, manifest, entry, ref, module, why=f"not emulated: {exc}")


def golden_cases(bundle: Path, manifest: dict) -> list[tuple[np.ndarray, ...]]:
    """The bundle's golden inputs, one tuple per case with an array per model input."""
    shapes = mf.input_shapes(manifest)
    golden = manifest["golden"]
    extra = golden.get("extra_inputs") or [[] for _ in golden["inputs"]]
    return [tuple(read_tensor(mf.resolve(bundle, p), shape) for p, shape in zip([first, *rest], shapes))
            for first, rest in zip(golden["inputs"], extra)]


def reverify_bundle(bundle: Path, threads: int = 1) -> list[dict]:
    """`pocket verify`: sha256 of every artifact, then golden inputs vs the recorded outputs."""
    manifest = mf.read(bundle)
    check_artifacts(bundle, manifest)
    cases = golden_cases(bundle, manifest)
    shapes = [o["shape"] for o in manifest["outputs"]]
    results = []
    for entry in manifest["artifacts"]:
        if not can_run(entry) or not entry["golden_outputs"]:
            results.append({"file": entry["file"], "status": "sha256 ok; not runnable here"})
            continue
        session = Session(mf.resolve(bundle, entry["file"]), bundle=bundle, manifest=manifest,
                          entry=entry, threads=threads)
        worst = 0.0
        for case, files in zip(cases, entry["golden_outputs"]):
            for out, path, shape in zip(session.run_raw(*case), files, shapes):
                want = read_tensor(mf.resolve(bundle, path), shape)
                worst = max(worst, parity(want, out)["max_abs_error"])
        scale = max(float(np.abs(read_tensor(mf.resolve(bundle, entry["golden_outputs"][0][0]),
                                             shapes[0])).max()), 1.0)
        if worst > 1e-5 * scale:
            raise VerificationError(f"{entry['file']} no longer reproduces its golden outputs "
                                    f"(max abs error {worst:.2e}); rebuild the bundle")
        results.append({"file": entry["file"], "status": "ok", "max_abs_error": worst})
    return results
