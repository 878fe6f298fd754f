"""`pocket bench`: a bundle's artifacts side by side with PyTorch eager and ONNX Runtime.

Built on runtime_py.bench (the harness the phone apps mirror). This side adds what a bundle
alone cannot give: the eager model from the zoo registry, its ONNX export, the plots and
the roofline. Every candidate of one thread count is timed in one interleaved run.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from runtime_py import bench as hb
from runtime_py import manifest as mf
from runtime_py.errors import PocketError, UsageError
from runtime_py.runtimes import RUNTIME_NAMES
from runtime_py.session import check_artifacts
from sdk_builder.quantize.budget import DEFAULT_MAX_DROP
from sdk_builder.quantize.recipes import REFERENCE

REFERENCES = ("eager", "onnxruntime")


@dataclass
class BenchOptions:
    artifacts: list[str] = field(default_factory=list)   # file names or unique parts; [] = all runnable
    threads: list[int] = field(default_factory=lambda: [1])
    warmup: int = 10
    iters: int = 200
    against: list[str] = field(default_factory=lambda: list(REFERENCES))
    overhead: bool = True          # time Session.run against the raw runtime call
    profile: bool = False
    roofline: bool = False
    out: Path | None = None        # JSON path; PNGs are written next to it
    plots: bool = True


def parse_threads(text: str) -> list[int]:
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--threads takes a comma list of integers, e.g. 1,2 (got '{text}')") from None
    if not threads or any(t < 1 or t > 64 for t in threads):
        raise UsageError(f"--threads must list counts between 1 and 64 (got '{text}')")
    return list(dict.fromkeys(threads))


def parse_against(text: str) -> list[str]:
    from runtime_py.errors import did_you_mean

    names = [t.strip() for t in text.split(",") if t.strip() and t.strip() != "none"]
    for n in names:
        if n not in REFERENCES:
            raise UsageError(f"unknown --against '{n}'{did_you_mean(n, REFERENCES)}; "
                             f"choose from {', '.join(REFERENCES)} or none")
    return list(dict.fromkeys(names))


def _task_metric(manifest: dict) -> str | None:
    """The task metric the build measured on the evaluation split (e.g. top1_accuracy, miou)."""
    for entry in manifest["artifacts"]:
        metric = ((entry.get("verification") or {}).get("evaluation") or {}).get("metric")
        if metric:
            return metric
    return None


def short_name(model: str, entry: dict) -> str:
    """'skipnet_m.xnnpack.int8-static.pte' -> 'xnnpack.int8-static'."""
    stem = entry["file"].rsplit(".", 1)[0]
    return stem[len(model) + 1:] if stem.startswith(model + ".") else stem


def record_backend(entry: dict) -> str:
    """An artifact's `benchmarkModel.backend` (ExecuTorch's benchmark-record field, kept by
    that name): its format's file-name tag (xnnpack, litert, coreml), as the file name says."""
    from sdk_builder.formats import FORMATS

    tags = {f.name: f.tag for f in FORMATS}
    return tags.get(entry["format"]) or entry.get("delegate") or entry["runtime"]


def golden_case(bundle: Path, manifest: dict) -> tuple[np.ndarray, ...]:
    """The bundle's first golden case (a real preprocessed image, then any extra inputs),
    else seeded random tensors: one array per model input."""
    from sdk_builder.verify import golden_cases

    if manifest["golden"]["inputs"]:
        try:
            return golden_cases(bundle, manifest)[0]
        except (PocketError, ValueError):
            pass
    rng = np.random.default_rng(0)
    return tuple(rng.random(tuple(s), dtype=np.float32) for s in mf.input_shapes(manifest))


def select_artifacts(manifest: dict, wanted: list[str]) -> tuple[list[dict], list[str]]:
    """(entries to bench, notes about skipped ones)."""
    from runtime_py.runtimes import can_run, is_emulated

    entries = [mf.find_artifact(manifest, w) for w in wanted] if wanted else manifest["artifacts"]
    entries = list({e["file"]: e for e in entries}.values())
    notes = [f"{e['file']}: skipped, its runtime/delegate does not run on this machine"
             for e in entries if not can_run(e)]
    runnable = [e for e in entries if can_run(e)]
    notes += [f"{e['file']}: skipped, it runs emulated here (runtime_py's Core ML interpreter): "
              "its timings would say nothing about a phone" for e in runnable if is_emulated(e)]
    return [e for e in runnable if not is_emulated(e)], notes


def delegation_of(entry: dict, bundle: Path | None = None) -> dict:
    """The manifest's delegation summary; for an artifact built before it was recorded, what
    its runtime can read back from the file (needs `bundle`)."""
    if entry.get("delegation"):
        return entry["delegation"]
    if bundle is None:
        return {}
    from runtime_py.runtimes import delegation

    entry["delegation"] = delegation(entry["runtime"], mf.resolve(bundle, entry["file"]))
    return entry["delegation"]


def eager_model(manifest: dict) -> tuple[Any | None, str | None]:
    """(the zoo's eager module, None) or (None, why it is not available)."""
    from models import registry

    name = manifest["model"]["name"]
    try:
        spec = registry.get(name)
    except Exception:  # noqa: BLE001 - the registry's error type is not ours to rely on
        return None, (f"model '{name}' is not in the zoo registry: eager and ONNX Runtime "
                      "comparisons skipped (register it to compare)")
    return spec.load(), None


def export_onnx(module: Any, example: np.ndarray, folder: Path) -> Path:
    """module -> folder/model.onnx (torch.onnx, legacy TorchScript exporter: it needs only
    `onnx`; the dynamo exporter also needs onnxscript, which is not installed)."""
    import torch

    path = folder / "model.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(example),), str(path), dynamo=False,
                          input_names=["input"], output_names=["output"])
    return path


# ---------------------------------------------------------------- loaders
def _artifact_loader(bundle: Path, entry: dict, case: tuple, threads: int) -> Callable:
    def load() -> Callable[[], Any]:
        from runtime_py.runtimes import open_runner

        runner = open_runner(entry["runtime"], mf.resolve(bundle, entry["file"]), threads=threads)
        return lambda: runner.run(list(case))
    return load


def _eager_loader(module: Any, case: tuple, threads: int) -> Callable:
    def load() -> Callable[[], Any]:
        import torch

        torch.set_num_threads(threads)
        xt = tuple(torch.from_numpy(x) for x in case)

        def call() -> Any:
            with torch.inference_mode():
                return module(*xt)
        return call
    return load


def _ort_loader(path: Path, x: np.ndarray, threads: int) -> Callable:
    def load() -> Callable[[], Any]:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        return lambda: sess.run(None, feed)
    return load


# ---------------------------------------------------------------- the run
@contextlib.contextmanager
def _references(manifest: dict, case: tuple, against: list[str],
                notes: list[str]) -> Iterator[dict]:
    """{'eager': module, 'onnxruntime': onnx path} for the references that can be had."""
    refs: dict[str, Any] = {}
    if not against:
        yield refs
        return
    module, why = eager_model(manifest)
    if module is None:
        notes.append(why)
        yield refs
        return
    if "eager" in against:
        refs["eager"] = module
    with tempfile.TemporaryDirectory(prefix="pocket-bench-") as tmp:
        if "onnxruntime" in against and len(case) > 1:
            notes.append("onnxruntime skipped: the reference is exported for one input")
        elif "onnxruntime" in against:
            try:
                refs["onnxruntime"] = export_onnx(module, case[0], Path(tmp))
            except Exception as exc:  # noqa: BLE001 - one missing reference is a note
                from runtime_py.errors import one_line

                notes.append(f"onnxruntime skipped: ONNX export failed ({one_line(exc)})")
        yield refs


def run_bench(bundle: Path, opts: BenchOptions, say: Callable[[str], None] = lambda s: None) -> dict:
    """Benchmark a bundle; the result dict follows schemas/bench.schema.json."""
    manifest = mf.read(bundle)
    model = manifest["model"]["name"]
    entries, notes = select_artifacts(manifest, opts.artifacts)
    if not entries:
        raise PocketError(f"no artifact of {bundle} runs on this machine; nothing to benchmark")
    check_artifacts(bundle, manifest, entries)     # time what the manifest vouches for
    case = golden_case(bundle, manifest)
    for e in entries:
        delegation_of(e, bundle)
    device = hb.device_info()
    result: dict = {"schema_version": hb.SCHEMA_VERSION, "kind": "pocketvision.bench",
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "bundle": str(bundle), "target": manifest.get("target", ""),
                    "model": {**{k: manifest["model"][k] for k in ("name", "task", "params", "macs")},
                              "metric": _task_metric(manifest)},
                    "settings": {"threads": opts.threads, "warmup": opts.warmup, "iters": opts.iters,
                                 "against": opts.against, "interleaved": True,
                                 "statistic": "trimmed_mean_ms (middle 80%)"},
                    "deviceInfo": device, "runtimes": hb.runtime_versions(), "notes": notes,
                    "runs": [], "records": []}
    with _references(manifest, case, opts.against, notes) as refs:
        for threads in opts.threads:
            say(f"timing {len(entries)} artifact(s) + {', '.join(refs) or 'no references'} "
                f"with {threads} thread(s)")
            run = _run_threads(bundle, manifest, entries, refs, case, threads, opts)
            result["runs"].append(run)
        if opts.profile and len(case) > 1:
            notes.append("operator profiles skipped: the profilers feed one input")
        elif opts.profile:
            say("profiling operators")
            from sdk_builder.bench.extra import profiles

            result["profiles"] = profiles(bundle, entries, case[0], refs.get("eager"), opts.threads[0])
    if opts.roofline:
        say("measuring this machine's fp32 GEMM peak")
        from sdk_builder.bench.extra import roofline

        result["roofline"] = roofline(result, manifest["model"]["macs"])
    for run in result["runs"]:
        for row in run["rows"]:
            result["records"].extend(_records(model, row, run["threads"], device, result))
    return result


def _run_threads(bundle: Path, manifest: dict, entries: list[dict], refs: dict,
                 case: tuple, threads: int, opts: BenchOptions) -> dict:
    model = manifest["model"]["name"]
    for runtime in RUNTIME_NAMES:          # process-wide pools (ExecuTorch's threadpool)
        hb.set_threads(runtime, threads)
    hb.set_threads("torch", threads)
    cands: list[hb.Candidate] = []
    for e in entries:
        name = short_name(model, e)
        meta = {"kind": "artifact", "file": e["file"], "runtime": e["runtime"],
                "backend": record_backend(e), "recipe": e["recipe"], "format": e["format"]}
        cands.append(hb.prepare(name, _artifact_loader(bundle, e, case, threads), opts.warmup, meta))
    if "eager" in refs:
        cands.append(hb.prepare("eager", _eager_loader(refs["eager"], case, threads), opts.warmup,
                                {"kind": "reference", "runtime": "torch", "backend": "pytorch-eager",
                                 "recipe": "fp32"}))
    if "onnxruntime" in refs:
        cands.append(hb.prepare("onnxruntime", _ort_loader(refs["onnxruntime"], case[0], threads),
                                opts.warmup, {"kind": "reference", "runtime": "onnxruntime",
                                              "backend": "onnxruntime-cpu", "recipe": "fp32"}))
    times = hb.run_interleaved(cands, opts.iters)
    stats = {c.name: hb.summarize(times[c.name]) for c in cands}
    rows = [_row(c, stats, manifest, entries) for c in cands]
    del cands                                   # free the timed models before the probes
    ok = [r for r in rows if r["kind"] == "artifact" and r.get("verification") == "passed"
          and r.get("drop_points", 0.0) <= DEFAULT_MAX_DROP]
    best = min(ok, key=lambda r: r["latency"]["trimmed_mean_ms"])["name"] if ok else None
    if opts.overhead:
        for row in rows:
            if row["kind"] == "artifact":
                row.update(_overhead(bundle, row["file"], case, threads, opts))
    return {"threads": threads, "rows": rows, "best": best}


def _overhead(bundle: Path, file: str, case: tuple, threads: int, opts: BenchOptions) -> dict:
    """Session.run / Session.run_raw over the bare runtime call, on one loaded model."""
    import runtime_py

    session = runtime_py.load(bundle, artifact=file, threads=threads, check_integrity=False)
    probe = hb.session_overhead(session, case, max(opts.iters, 200), opts.warmup)
    if probe is None:
        return {}
    return {"session_overhead_pct": probe["run_overhead_pct"],
            "session_run_raw_overhead_pct": probe["run_raw_overhead_pct"]}


def _row(c: hb.Candidate, stats: dict, manifest: dict, entries: list[dict]) -> dict:
    key = "trimmed_mean_ms"
    row = {"name": c.name, **c.meta, "load_ms": c.load_ms, "first_ms": c.first_ms,
           "peak_rss_delta_bytes": c.peak_rss_delta_bytes, "latency": stats[c.name]}
    lat = stats[c.name][key]
    for ref in REFERENCES:
        if ref in stats and ref != c.name:
            row[f"speedup_vs_{ref}"] = stats[ref][key] / lat
    if c.meta["kind"] == "artifact":
        entry = next(e for e in entries if e["file"] == c.meta["file"])
        row["size_bytes"] = entry["size_bytes"]
        evaluation = (entry.get("verification") or {}).get("evaluation") or {}
        row["accuracy"] = evaluation.get("artifact")
        if evaluation.get("drop_points") is not None:
            row["drop_points"] = evaluation["drop_points"]
        row["verification"] = (entry.get("verification") or {}).get("status")
        row["delegated_share"] = delegation_of(entry).get("delegated_share")
        fp32 = f"{c.name.rsplit('.', 1)[0]}.{REFERENCE}"
        if entry["recipe"] != REFERENCE and fp32 in stats:
            row["speedup_vs_fp32"] = stats[fp32][key] / lat
    return row


def _records(model: str, row: dict, threads: int, device: dict, result: dict) -> list[dict]:
    cand = hb.Candidate(row["name"], lambda: None, {k: row.get(k) for k in
                                                    ("file", "runtime", "backend", "recipe")
                                                    if row.get(k) is not None},
                        row["load_ms"], row["first_ms"], row["peak_rss_delta_bytes"])
    extra = {k: row[k] for k in ("speedup_vs_eager", "speedup_vs_onnxruntime", "speedup_vs_fp32",
                                 "session_overhead_pct", "session_run_raw_overhead_pct") if row.get(k) is not None}
    for r in (result.get("roofline") or {}).get("rows", []):
        if r["name"] == row["name"] and r["threads"] == threads:
            extra.update({"achieved_gflops": r["achieved_gflops"], "peak_share": r["peak_share"]})
    return hb.records(model, cand, row["latency"], threads, device, extra)


def validate(result: dict) -> None:
    """Raise PocketError naming the first violation of schemas/bench.schema.json."""
    import jsonschema

    from schemas import load_schema

    validator = jsonschema.Draft202012Validator(load_schema("bench"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PocketError(f"bench result is invalid at {where}: {error.message} (a pocket bug; report it)")


def default_out(bundle: Path) -> Path:
    """dist/skipnet_m-android -> dist/skipnet_m-android.bench.json (outside the bundle)."""
    bundle = Path(bundle).resolve()
    return bundle.parent / f"{bundle.name}.bench.json"


def write(result: dict, out: Path, plots: bool = True) -> list[Path]:
    """Validate, write the JSON and (optionally) the PNG charts next to it; the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if plots:
        from sdk_builder.bench.plots import write_plots

        written = write_plots(result, out.with_suffix(""))
        result["plots"] = [p.name for p in written]
    validate(result)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return [out] + written


REPORT_START, REPORT_END = "<!-- bench:start -->", "<!-- bench:end -->"


def link_from_report(bundle: Path, written: list[Path], result: dict) -> Path | None:
    """Add (or replace) a benchmark section in the bundle's report.md that links the JSON and
    charts just written; None when the bundle has no report. Written atomically."""
    import os
    import re

    report = Path(bundle) / "report.md"
    if not report.is_file():
        return None
    device = result["deviceInfo"]
    lines = [REPORT_START, "## Benchmark", "",
             f"`pocket bench`, {result['created']}, {device['cpu']} ({device['cores']} cores), "
             f"{device['os']}; ratios are measured side by side in one interleaved run."]
    for run in result["runs"]:
        best = {r["name"]: r for r in run["rows"]}.get(run.get("best") or "")
        if best:
            vs = ", ".join(f"{best[k]:.2f}× {label}" for k, label in
                           (("speedup_vs_eager", "PyTorch eager"),
                            ("speedup_vs_onnxruntime", "ONNX Runtime")) if best.get(k) is not None)
            lines.append(f"- {run['threads']} thread(s): best artifact within the accuracy budget "
                         f"`{best['name']}`" + (f" ({vs})" if vs else ""))
    lines.append("")
    for path in written:
        rel = Path(os.path.relpath(Path(path).resolve(), Path(bundle).resolve()))
        lines.append(f"![{path.name}]({rel.as_posix()})" if path.suffix == ".png"
                     else f"Full results: [{path.name}]({rel.as_posix()})")
        lines.append("")
    block = "\n".join(lines).rstrip() + "\n" + REPORT_END
    text = report.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(REPORT_START) + ".*?" + re.escape(REPORT_END), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    tmp = report.with_name(f".{report.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(report)
    return report
