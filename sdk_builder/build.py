"""plan -> export -> verify -> (select) -> bundle: the one data flow of `pocket build`."""
from __future__ import annotations

import datetime as dt
import errno
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime_py import manifest as mf
from runtime_py.errors import PocketError, one_line
from runtime_py.integrity import sha256_of
from runtime_py.session import check_artifacts
from sdk_builder.bundle import artifact_entry, bundle_name, staged_bundle, write_tensor
from sdk_builder.formats import ExportJob, Format
from sdk_builder.formats._common import version
from sdk_builder.progress import Steps, capture_native_output
from sdk_builder.quantize import budget as select, calibration, recipes
from sdk_builder.verify import (FP32_MAX_ABS_ERROR, Reference, VerificationError,
                                torch_reference, verify_artifact)

GOLDEN_CASES = 4


class ExportError(PocketError):
    """A toolchain could not export the model in one format."""


class PartialBuildError(PocketError):
    """The bundle was published, but some requested artifacts could not be built."""

    exit_code = 3


@dataclass
class BuildRequest:
    spec: object                       # models.registry.ModelSpec (zoo or user model)
    target: str
    recipes: list[str] = field(default_factory=list)
    weights: Path | None = None
    out_dir: Path = Path("dist")
    max_drop: float | None = None      # task-metric budget in points; None keeps every recipe
    calib_data: Path | None = None
    calib_samples: int | None = None


def toolchain_versions() -> dict[str, str]:
    """Versions of what wrote and verified the bundle: the formats' and runtimes' toolchains."""
    from runtime_py.runtimes import RUNTIMES
    from sdk_builder.formats import FORMATS

    dists = ("pocketvision", "torch", "torchao", *(d for f in FORMATS for d in f.toolchain),
             *(d for r in RUNTIMES for d in r.distributions), "ai-edge-quantizer", "numpy")
    return {dist: version(dist) for dist in dict.fromkeys(dists)}


def _golden_inputs(spec, evaluation) -> list[tuple[np.ndarray, ...]]:
    """Golden cases, one array per model input: the first held-out samples, or seeded
    noise for a model without evaluation data."""
    if evaluation is not None:
        return [(evaluation.inputs[i:i + 1].numpy().astype(np.float32),)
                for i in range(min(GOLDEN_CASES, len(evaluation.inputs)))]
    rng = np.random.default_rng(0)
    return [tuple(rng.standard_normal(shape).astype(np.float32) for shape in spec.input_shapes)
            for _ in range(GOLDEN_CASES)]


def _model_section(spec, module, weights: Path | None) -> dict:
    from models.layers import count_macs, count_params

    return {"name": spec.name, "task": spec.task, "description": spec.description,
            "params": count_params(module), "macs": count_macs(module, *spec.input_shapes),
            "weights_file": weights.name if weights else None,
            "weights_sha256": sha256_of(weights) if weights else None}


def _base_manifest(req: BuildRequest, module, weights: Path | None, calib_note: str) -> dict:
    spec = req.spec
    return {
        "schema_version": mf.SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "target": req.target,
        "model": _model_section(spec, module, weights),
        "input": spec.input.manifest(),
        "extra_inputs": [e.manifest() for e in spec.extra_inputs],
        "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": "float32", "meaning": o.meaning,
                     "compare": "exact" if o.exact else "close"} for o in spec.outputs],
        "labels_file": "labels.txt" if spec.labels else None,
        "postprocess": dict(spec.postprocess),
        "golden": {"inputs": [], "reference": []},
        "tolerances": {"fp32_max_abs_error": FP32_MAX_ABS_ERROR},
        "calibration": calib_note,
        "artifacts": [],
        "skipped": [],
        "toolchain": toolchain_versions(),
    }


def _write_golden(stage: Path, manifest: dict, ref: Reference) -> None:
    golden, extras = manifest["golden"], manifest["extra_inputs"]
    if extras:
        golden["extra_inputs"] = []
    for i, (x, *rest) in enumerate(ref.golden_inputs):
        write_tensor(stage / f"golden/input{i}.bin", x)
        golden["inputs"].append(f"golden/input{i}.bin")
        if extras:
            files = [f"golden/input{i}.{e['name']}.bin" for e in extras]
            for name, tensor in zip(files, rest):
                write_tensor(stage / name, tensor)
            golden["extra_inputs"].append(files)
        row = []
        for j, out in enumerate(ref.golden_outputs[i]):
            write_tensor(stage / f"golden/pytorch.in{i}.out{j}.bin", out)
            row.append(f"golden/pytorch.in{i}.out{j}.bin")
        manifest["golden"]["reference"].append(row)


class Canonical:
    """The model as each format's exporter gets it: canonicalized once per set of passes
    (sdk_builder.passes), captured lazily for failure diagnosis. A model with modules
    kept float (zoo routers) goes as written: the exporters find those by their class."""

    def __init__(self, module, examples: tuple, keep_float: tuple) -> None:
        from sdk_builder.quantize.pt2e import present_types

        self.module, self.examples = module, examples
        self.enabled = not present_types(module, keep_float)
        self._by_passes: dict[tuple, tuple] = {}
        self._graph: list = []               # [graph module or None], once captured

    def for_format(self, fmt: str, recipe: str | None = None) -> tuple[object, list[str]]:
        from sdk_builder.passes import PASSES, canonicalize

        if not self.enabled or (recipe and recipes.recipe(recipe).needs_layers):
            return self.module, []
        key = tuple(p.name for p in PASSES if p.concerns(fmt, recipe))
        if key not in self._by_passes:
            self._by_passes[key] = canonicalize(self.module, self.examples, fmt, recipe)
        return self._by_passes[key]

    def graph(self):
        """The captured graph (for naming a failing op), or None if it does not capture."""
        if not self._graph:
            from sdk_builder.passes import capture

            try:
                self._graph.append(capture(self.module, self.examples).module())
            except PocketError:
                self._graph.append(None)
        return self._graph[0]


def _export(fmt: Format, recipe: str, canon: Canonical, spec, stage: Path,
            calib) -> tuple[dict, object]:
    """Export one artifact into the stage: (its manifest entry, its PyTorch twin or None)."""
    from sdk_builder.diagnose import export_failure

    name = fmt.artifact_name(spec.name, recipe)
    module, passes = canon.for_format(fmt.name, recipe)
    job = ExportJob(module=module, examples=canon.examples, recipe=recipe,
                    out_path=stage / name, calibration=calib, keep_float=tuple(spec.keep_float),
                    input_names=("input", *(e.name for e in spec.extra_inputs)))
    try:
        result = fmt.export(job)
    except PocketError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):   # the output disk, not the toolchain
            raise
        raise ExportError(f"{fmt.name} {recipe} export failed: {one_line(exc, 300)}"
                          f"{export_failure(exc, canon.graph())}") from exc
    except Exception as exc:  # toolchain failures: name the format, the op, the user's line
        raise ExportError(f"{fmt.name} {recipe} export failed: {type(exc).__name__}: "
                          f"{one_line(exc, 300)}{export_failure(exc, canon.graph())}") from exc
    return artifact_entry(fmt, recipe, result, passes), result.quantized_module


def _not_built(unbuilt: list[dict], fmt: str, recipe: str, reason: str, steps: Steps,
               applicable: bool = True) -> None:
    """Record an artifact of the plan that was not built (or not kept), and say so."""
    unbuilt.append({"format": fmt, "recipe": recipe, "reason": reason, "applicable": applicable})
    level = "[yellow]warning:[/]" if applicable else "[cyan]note:[/]"
    steps.console.print(f"{level} {reason}", soft_wrap=True)


def _drop_artifact(stage: Path, manifest: dict, entry: dict, reason: str, steps: Steps,
                   unbuilt: list[dict]) -> None:
    manifest["artifacts"].remove(entry)
    select.remove_artifact(stage, entry)
    _not_built(unbuilt, entry["format"], entry["recipe"], reason, steps)


def _explain_drop(entry: dict, module, quantized, ref: Reference, max_drop: float | None,
                  steps: Steps) -> None:
    """For a quantized artifact over the budget, record the layers with the worst SNR."""
    import torch

    from sdk_builder.quantize.layerwise import graph_of, worst_layers

    evaluation = entry["verification"].get("evaluation") or {}
    budget = select.DEFAULT_MAX_DROP if max_drop is None else max_drop
    if evaluation.get("drop_points", 0.0) <= budget:
        return
    cases = ref.golden_inputs if ref.eval_inputs is None else \
        [(ref.eval_inputs[i:i + 1],) for i in range(min(16, len(ref.eval_inputs)))]
    if quantized is None and evaluation.get("estimated"):   # Core ML: its weights, in PyTorch
        from sdk_builder.quantize.estimate import compressed_twin

        quantized = graph_of(compressed_twin(module, entry["recipe"]),
                             tuple(torch.from_numpy(x) for x in cases[0]))
    if quantized is None:
        return
    with steps.step(f"layer-wise SNR of {entry['file']} (drop over {budget:g} points)"):
        entry["verification"]["worst_layers"] = worst_layers(module, quantized, cases)


def _build_one(fmt: Format, recipe: str, canon: Canonical, req: BuildRequest, stage: Path,
               manifest: dict, context: tuple, steps: Steps, unbuilt: list[dict]) -> None:
    """Export and verify one artifact of the plan; what fails lands in `unbuilt`."""
    from rich.markup import escape

    from sdk_builder.report import delegation_note

    module, ref, calib = context
    try:
        with steps.step(f"export {fmt.name} {recipe}"):
            entry, quantized = _export(fmt, recipe, canon, req.spec, stage, calib)
    except ExportError as exc:
        _not_built(unbuilt, fmt.name, recipe, str(exc), steps)
        return
    manifest["artifacts"].append(entry)
    try:
        with steps.step(f"verify {entry['file']}"):
            verify_artifact(stage, manifest, entry, ref, module)
    except PocketError as exc:  # exported, but its runtime cannot run or even load it
        _drop_artifact(stage, manifest, entry, f"{fmt.name} {recipe}: exported, but {exc}", steps,
                       unbuilt)
        return
    if entry["verification"]["status"] == "failed":
        if recipes.recipe(recipe).reference:
            raise VerificationError(f"{entry['file']}: {entry['verification']['reason']}")
        _drop_artifact(stage, manifest, entry, f"{fmt.name} {recipe}: exported, but "
                       f"{entry['verification']['reason']}", steps, unbuilt)
        return
    if entry["recipe_details"].get("warning"):
        steps.console.print(f"[yellow]warning:[/] {escape(entry['file'])}: "
                            f"{escape(entry['recipe_details']['warning'])}", soft_wrap=True)
    note = delegation_note(entry)
    if note:
        steps.console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    _explain_drop(entry, module, quantized, ref, req.max_drop, steps)


def build(req: BuildRequest, steps: Steps | None = None) -> tuple[Path, dict]:
    """Build, verify and publish DIR/<model>-<target>/; returns (bundle path, manifest).
    Artifacts a toolchain could not export are listed in manifest['skipped']."""
    steps = steps or Steps(quiet=True)
    spec = req.spec
    plan = select.candidates(req.target, req.recipes, exhaustive=req.max_drop is not None)
    name = bundle_name(spec.name, req.target)
    weights = Path(req.weights) if req.weights else spec.weights_path()
    log = Path(req.out_dir) / f".{name}.build.log"
    with staged_bundle(Path(req.out_dir), name) as stage:
        try:
            with capture_native_output(log):
                manifest = _build_into(stage, req, plan, weights, steps)
        except BaseException as exc:
            failed_log = Path(req.out_dir) / f"{name}.failed.log"
            shutil.move(log, failed_log)
            if isinstance(exc, PocketError):
                raise type(exc)(f"{exc} (toolchain log: {failed_log})") from exc
            raise
        shutil.move(log, stage / "build.log")
    return Path(req.out_dir) / name, manifest


def _build_into(stage: Path, req: BuildRequest, plan, weights, steps: Steps) -> dict:
    from sdk_builder.report import write_report

    spec = req.spec
    with steps.step(f"load {spec.name} ({weights.name if weights else 'no weights file'})"):
        module = spec.load(weights)
        evaluation = spec.evaluation() if spec.evaluation else None
        calib, calib_note = calibration.choose(spec, req.calib_data, req.calib_samples)
        manifest = _base_manifest(req, module, weights, calib_note)
    with steps.step("PyTorch reference on golden inputs and evaluation split"):
        exact = tuple(j for j, o in enumerate(spec.outputs) if o.exact)
        ref = torch_reference(module, _golden_inputs(spec, evaluation), evaluation,
                              spec.task_row, exact)
        _write_golden(stage, manifest, ref)
        if spec.labels:
            (stage / "labels.txt").write_text("\n".join(spec.labels) + "\n", encoding="utf-8")
    import torch

    canon = Canonical(module, tuple(torch.zeros(s) for s in spec.input_shapes), tuple(spec.keep_float))
    unbuilt: list[dict] = []       # planned artifacts not built or not kept, with the reason
    for fmt, recipe in plan:
        why_not = recipes.recipe(recipe).why_not(module)
        if why_not:
            _not_built(unbuilt, fmt.name, recipe, f"{fmt.name} {recipe}: not applicable: {why_not}",
                       steps, applicable=False)
            continue
        _build_one(fmt, recipe, canon, req, stage, manifest, (module, ref, calib), steps, unbuilt)
    if not manifest["artifacts"]:
        raise ExportError("no artifact could be built: " + "; ".join(u["reason"] for u in unbuilt))
    if req.max_drop is not None:
        with steps.step(f"keep the smallest artifact per format within a {req.max_drop:g}-point drop"):
            select.keep_within_budget(stage, manifest, req.max_drop, unbuilt)
    else:
        manifest["skipped"] = [{k: u[k] for k in ("format", "recipe", "reason")} for u in unbuilt]
    with steps.step("write manifest and report"):
        mf.write(stage, manifest)
        write_report(stage, manifest)
        check_artifacts(stage, mf.read(stage))
    return manifest
