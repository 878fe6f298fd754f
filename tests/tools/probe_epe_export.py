"""Export a model with the repository's own exporters and check each artifact in its
runtime against eager PyTorch: delegation, max abs error of the first output, and exact
equality of the routes (second output) when the model returns them.

    python -m tests.tools.probe_epe_export models.zoo.epe_edanet:EPEEDANet [--out DIR]
        [--only executorch-xnnpack:fp32,litert:int8-static,...] [--seed 0]

Test inputs: normal noise, and uint8-valued scenes with flat regions (many patches of
identical content: exact entropy ties) next to textured ones, normalised as
(x/255 - 0.5)/0.25. int8 recipes calibrate on a few random normal inputs. Core ML cannot
run here: its MIL program's op types are listed and searched for sort/topk/gather/scatter.
"""
from __future__ import annotations

import argparse
import importlib
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

PLAN = (("executorch-xnnpack", "fp32"), ("executorch-xnnpack", "int8-static"),
        ("litert", "fp32"), ("litert", "int8-static"), ("coreml", "fp16"))
FORBIDDEN_MIL = ("topk", "gather", "sort", "argsort", "scatter")
SHAPE = (1, 3, 128, 128)


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((pixels / 255.0 - 0.5) / 0.25).astype(np.float32))[None]


def scene(rng: np.random.Generator, flat_share: float) -> torch.Tensor:
    """A uint8-valued image: each 16x16 patch flat (one of 3 colours) with probability
    `flat_share`, else textured noise; plus one flat band not aligned to the patch grid."""
    colours = rng.integers(0, 256, size=(3, 3))
    img = np.empty((3, 128, 128))
    for r in range(8):
        for c in range(8):
            cell = np.s_[:, r * 16:(r + 1) * 16, c * 16:(c + 1) * 16]
            if rng.random() < flat_share:
                img[cell] = colours[rng.integers(3)][:, None, None]
            else:
                base = rng.integers(0, 256, size=(3, 1, 1))
                img[cell] = np.clip(base + rng.normal(0, 40, size=(3, 16, 16)), 0, 255).round()
    img[:, 5:37, 70:123] = colours[0][:, None, None]
    return _normalise(img)


def test_inputs(seed: int) -> dict[str, torch.Tensor]:
    """Named batch-1 inputs: noise and scenes with many exact ties."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    return {"normal-1": torch.randn(SHAPE, generator=gen),
            "normal-2": torch.randn(SHAPE, generator=gen),
            "scene-30%flat": scene(rng, 0.3),
            "scene-70%flat": scene(rng, 0.7),
            "sky-over-texture": _sky(rng),
            "all-flat": _normalise(np.full((3, 128, 128), 117.0))}


def _sky(rng: np.random.Generator) -> torch.Tensor:
    img = np.clip(rng.normal(120, 50, size=(3, 128, 128)), 0, 255).round()
    img[:, :72] = np.array([90.0, 160.0, 230.0])[:, None, None]
    return _normalise(img)


def calibration(seed: int, n: int = 4) -> Callable[[], Any]:
    gen = torch.Generator().manual_seed(seed + 100)
    batch = [torch.randn(SHAPE, generator=gen) for _ in range(n)]
    return lambda: iter(batch)


def run_artifact(path: Path, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of the artifact in its runtime (1 thread), in the model's output order."""
    if path.suffix == ".pte":
        from runtime_py.runtimes.executorch import Backend
    else:
        from runtime_py.runtimes.litert import Backend
    return Backend(path, threads=1).run([x])


def _by_shape(outputs: list[np.ndarray], wanted: list[np.ndarray]) -> list[np.ndarray]:
    """LiteRT may list outputs in another order: match them to the eager ones by shape."""
    pool = list(outputs)
    ordered = []
    for w in wanted:
        i = next(k for k, o in enumerate(pool) if tuple(o.shape) == tuple(w.shape))
        ordered.append(pool.pop(i))
    return ordered


def mil_ops(path: Path) -> dict:
    """Op-type counts of a Core ML program and the fp32 ops (from the saved spec)."""
    import coremltools as ct
    from coremltools.proto import MIL_pb2

    fp32 = MIL_pb2.DataType.Value("FLOAT32")
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    counts, fp32_ops = Counter(), Counter()
    for block in spec.mlProgram.functions["main"].block_specializations.values():
        for op in block.operations:
            counts[op.type] += 1
            if op.type != "const" and any(o.type.tensorType.dataType == fp32
                                          for o in op.outputs):
                fp32_ops[op.type] += 1
    return {"ops": dict(sorted(counts.items())), "fp32_ops": dict(sorted(fp32_ops.items())),
            "forbidden": sorted(t for t in counts if any(f in t for f in FORBIDDEN_MIL))}


def probe_one(fmt: str, recipe: str, module: torch.nn.Module, inputs: dict, eager: dict,
              out_dir: Path, keep_float: tuple, seed: int) -> dict:
    from sdk_builder.formats import ExportJob, get_format

    suffix = get_format(fmt).suffix
    path = out_dir / f"probe.{fmt}.{recipe}{suffix}"
    job = ExportJob(module, (torch.zeros(SHAPE),), recipe, path, calibration=calibration(seed),
                    keep_float=keep_float)
    result = get_format(fmt).exporter()(job)
    row: dict = {"format": fmt, "recipe": recipe, "details_kept_float":
                 result.details.get("kept_float_modules")}
    if result.delegation:
        d = result.delegation
        row["delegation"] = {k: d.get(k) for k in ("delegated_share", "fallback_counts",
                                                    "fallback_reasons", "delegated_subgraphs")}
    if fmt == "coreml":
        row["mil"] = mil_ops(path)
        row["compute_precision"] = result.details.get("compute_precision")
        return row
    errors, matches = {}, {}
    for name, x in inputs.items():
        outs = _by_shape(run_artifact(path, x.numpy()), eager[name])
        errors[name] = float(np.max(np.abs(outs[0] - eager[name][0])))
        if len(outs) > 1:
            matches[name] = bool(np.array_equal(outs[1], eager[name][1]))
    row["max_abs_error"] = errors
    if matches:
        row["routes_match"] = matches
    return row


def build(factory: str, seed: int) -> torch.nn.Module:
    """The untrained model, its BatchNorm statistics estimated on a few random inputs (with
    the init's running stats (0, 1) the dense features reach ~1e4, where fp32 rounding
    alone exceeds the 1e-4 error budget; a trained model has real statistics)."""
    mod, _, name = factory.partition(":")
    torch.manual_seed(seed)
    module = getattr(importlib.import_module(mod), name)()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None                  # cumulative average over the warm-up
    module.train()
    with torch.no_grad():
        for _ in range(4):
            module(torch.randn(4, *SHAPE[1:]))
    return module.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("factory", help="module:callable returning the nn.Module")
    parser.add_argument("--out", type=Path, help="folder for the artifacts (default: temp)")
    parser.add_argument("--only", help="comma-separated format:recipe pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-keep-float", action="store_true",
                        help="quantize the routing too (to see what keep_float prevents)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from models.zoo._epe import FLOAT_MODULES

    module = build(args.factory, args.seed)
    inputs = test_inputs(args.seed)
    with torch.no_grad():
        eager = {k: [o.numpy() for o in _as_list(module(x))] for k, x in inputs.items()}
    plan = [tuple(p.split(":")) for p in args.only.split(",")] if args.only else PLAN
    keep = () if args.no_keep_float else FLOAT_MODULES
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt, recipe in plan:
            try:
                row = probe_one(fmt, recipe, module, inputs, eager, out_dir, keep, args.seed)
            except Exception as exc:   # a probe reports every pair, failures included
                row = {"format": fmt, "recipe": recipe, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(summary(rows))
    return 0


def summary(rows: list[dict]) -> str:
    """One line per artifact: delegation, worst max abs error, routes matched."""
    lines = [f"{'artifact':32} {'delegated':>9} {'fallback':24} {'max abs err':>11} {'routes':>7}"]
    for r in rows:
        name = f"{r['format']}:{r['recipe']}"
        if "error" in r:
            lines.append(f"{name:32} ERROR {r['error'][:120]}")
            continue
        d = r.get("delegation") or {}
        share = f"{d['delegated_share']:.1%}" if d else "-"
        fallback = ",".join(f"{k}x{v}" for k, v in (d.get("fallback_counts") or {}).items())
        err = f"{max(r['max_abs_error'].values()):.2e}" if "max_abs_error" in r else "-"
        routes = r.get("routes_match")
        matched = f"{sum(routes.values())}/{len(routes)}" if routes else "-"
        if "mil" in r:
            fallback = "forbidden: " + (",".join(r["mil"]["forbidden"]) or "none")
        lines.append(f"{name:32} {share:>9} {fallback or '-':24} {err:>11} {matched:>7}")
    return "\n".join(lines)


def _as_list(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


if __name__ == "__main__":
    raise SystemExit(main())
