"""plan -> export -> verify -> bundle: the one data flow of `pocket build`."""
from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime_py import manifest as mf
from runtime_py.errors import PocketError, one_line
from runtime_py.integrity import sha256_of, size_of
from runtime_py.session import check_artifacts
from sdk_builder.bundle import staged_bundle, write_tensor
from sdk_builder.formats import ExportJob, Format, plan_target
from sdk_builder.formats._common import version
from sdk_builder.progress import Steps, capture_native_output
from sdk_builder.verify import FP32_MAX_ABS_ERROR, Reference, VerificationError, torch_reference, verify_artifact

GOLDEN_CASES = 4
TOOLCHAIN = ("pocketvision", "torch", "torchao", "executorch", "litert-torch", "ai-edge-litert",
             "coremltools", "numpy")


class ExportError(PocketError):
    """A toolchain could not export the model in one format."""


@dataclass
class BuildRequest:
    model: str
    target: str
    recipes: list[str] = field(default_factory=list)
    weights: Path | None = None
    out_dir: Path = Path("dist")


def toolchain_versions() -> dict[str, str]:
    return {dist: version(dist) for dist in TOOLCHAIN}


def _golden_inputs(spec, evaluation) -> list[np.ndarray]:
    """The first held-out samples, or seeded noise for a model without evaluation data."""
    if evaluation is not None:
        return [evaluation.inputs[i:i + 1].numpy().astype(np.float32)
                for i in range(min(GOLDEN_CASES, len(evaluation.inputs)))]
    rng = np.random.default_rng(0)
    return [rng.standard_normal(spec.input.shape).astype(np.float32) for _ in range(GOLDEN_CASES)]


def _model_section(spec, module, weights: Path | None) -> dict:
    from models.layers import count_macs, count_params

    return {"name": spec.name, "task": spec.task, "description": spec.description,
            "params": count_params(module), "macs": count_macs(module, spec.input.shape),
            "weights_file": weights.name if weights else None,
            "weights_sha256": sha256_of(weights) if weights else None}


def _base_manifest(req: BuildRequest, spec, module, weights: Path | None) -> dict:
    inp = spec.input
    return {
        "schema_version": mf.SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "target": req.target,
        "model": _model_section(spec, module, weights),
        "input": {"name": "input", "shape": list(inp.shape), "dtype": inp.dtype,
                  "layout": inp.layout, "color": inp.color, "range": list(inp.range),
                  "mean": list(inp.mean), "std": list(inp.std),
                  "normalize_in_graph": inp.normalize_in_graph, "resize": "bilinear"},
        "outputs": [{"name": o.name, "shape": list(o.shape), "dtype": "float32", "meaning": o.meaning}
                    for o in spec.outputs],
        "labels_file": "labels.txt" if spec.labels else None,
        "postprocess": dict(spec.postprocess),
        "golden": {"inputs": [], "reference": []},
        "tolerances": {"fp32_max_abs_error": FP32_MAX_ABS_ERROR},
        "artifacts": [],
        "toolchain": toolchain_versions(),
    }


def _write_golden(stage: Path, manifest: dict, ref: Reference) -> None:
    for i, x in enumerate(ref.golden_inputs):
        write_tensor(stage / f"golden/input{i}.bin", x)
        manifest["golden"]["inputs"].append(f"golden/input{i}.bin")
        row = []
        for j, out in enumerate(ref.golden_outputs[i]):
            write_tensor(stage / f"golden/pytorch.in{i}.out{j}.bin", out)
            row.append(f"golden/pytorch.in{i}.out{j}.bin")
        manifest["golden"]["reference"].append(row)


def _export(fmt: Format, recipe: str, module, spec, stage: Path) -> dict:
    import torch

    name = fmt.artifact_name(spec.name, recipe)
    job = ExportJob(module=module, example=torch.zeros(spec.input.shape), recipe=recipe,
                    out_path=stage / name, calibration=spec.calibration)
    try:
        result = fmt.exporter()(job)
    except PocketError:
        raise
    except Exception as exc:  # toolchain failures: name the format and what the toolchain said
        raise ExportError(f"{fmt.name} {recipe} export failed: {type(exc).__name__}: "
                          f"{one_line(exc, 300)}") from exc
    return {"file": name, "format": fmt.name, "backend": fmt.backend, "runtime": fmt.runtime,
            "recipe": recipe, "recipe_details": result.details,
            "sha256": sha256_of(result.path), "size_bytes": size_of(result.path),
            "delegation": result.delegation, "golden_outputs": [],
            "verification": {"status": "structure-only"}}


def build(req: BuildRequest, steps: Steps | None = None) -> tuple[Path, dict]:
    """Build, verify and publish DIR/<model>-<target>/; returns (bundle path, manifest)."""
    from models.registry import get

    steps = steps or Steps(quiet=True)
    spec = get(req.model)
    plan = plan_target(req.target, req.recipes)
    name = f"{spec.name}-{req.target}"
    weights = Path(req.weights) if req.weights else spec.weights_path()
    log = Path(req.out_dir) / f".{name}.build.log"
    with staged_bundle(Path(req.out_dir), name) as stage:
        try:
            with capture_native_output(log):
                manifest = _build_into(stage, req, spec, plan, weights, steps)
        except BaseException as exc:
            failed_log = Path(req.out_dir) / f"{name}.failed.log"
            shutil.move(log, failed_log)
            if isinstance(exc, PocketError):
                raise type(exc)(f"{exc} (toolchain log: {failed_log})") from exc
            raise
        shutil.move(log, stage / "build.log")
    return Path(req.out_dir) / name, manifest


def _build_into(stage: Path, req: BuildRequest, spec, plan, weights, steps: Steps) -> dict:
    from sdk_builder.report import write_report

    with steps.step(f"load {spec.name} ({weights.name if weights else 'no weights'})"):
        module = spec.load(weights)
        evaluation = spec.evaluation() if spec.evaluation else None
        manifest = _base_manifest(req, spec, module, weights)
    with steps.step("PyTorch reference on golden inputs and evaluation split"):
        ref = torch_reference(module, _golden_inputs(spec, evaluation), evaluation)
        _write_golden(stage, manifest, ref)
        if spec.labels:
            (stage / "labels.txt").write_text("\n".join(spec.labels) + "\n", encoding="utf-8")
    for fmt, recipe in plan:
        with steps.step(f"export {fmt.name} {recipe}"):
            entry = _export(fmt, recipe, module, spec, stage)
            manifest["artifacts"].append(entry)
        with steps.step(f"verify {entry['file']}"):
            verify_artifact(stage, manifest, entry, ref)
        if entry["verification"]["status"] == "failed":
            raise VerificationError(f"{entry['file']}: {entry['verification']['reason']}")
    with steps.step("write manifest and report"):
        mf.write(stage, manifest)
        write_report(stage, manifest)
        check_artifacts(stage, mf.read(stage))
    return manifest
