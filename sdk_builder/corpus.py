"""`pocket doctor --corpus`: build every model of a corpus of user models for a target and
tabulate, per model x artifact, whether it built and verified (fp32 parity), how much of
it the delegate took, or the reason it did not build.

A corpus is a folder of model files, each with a `build()` factory and the constants
FAMILY (a name), INPUT_SHAPES (one N,C,H,W tuple per forward argument) and TASK. Each
model is built by `pocket build --model-file` in its own process (a toolchain crash costs
one row, not the run). The result is JSON (docs/corpus.json in this repository: the
README's table is rendered from it by sdk_builder.readme).
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runtime_py import manifest as mf
from models.tasks import TASK_NAMES
from runtime_py.errors import UsageError, did_you_mean, one_line
from sdk_builder.bundle import bundle_name
from sdk_builder.formats import plan_target

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "tests" / "fixtures" / "user_models" / "corpus"
RESULTS = ROOT / "docs" / "corpus.json"
MODEL_TIMEOUT = 1200            # seconds per model build


def read_metadata(path: Path) -> dict:
    """FAMILY, INPUT_SHAPES, TASK of a corpus file, read without importing it (literals)."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and node.targets[0].id in ("FAMILY", "INPUT_SHAPES", "TASK"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    missing = [k for k in ("FAMILY", "INPUT_SHAPES", "TASK") if k not in values]
    if missing:
        raise UsageError(f"{path.name} lacks {', '.join(missing)} (corpus files declare FAMILY, "
                         "INPUT_SHAPES and TASK)")
    if values["TASK"] not in TASK_NAMES:
        raise UsageError(f"{path.name}: TASK {values['TASK']!r} is not a task; choose one of "
                         f"{', '.join(TASK_NAMES)}{did_you_mean(str(values['TASK']), TASK_NAMES)}")
    return {"family": values["FAMILY"], "input_shapes": [list(s) for s in values["INPUT_SHAPES"]],
            "task": values["TASK"]}


def discover(folder: Path, only: tuple[str, ...] = ()) -> list[Path]:
    files = sorted(p for p in Path(folder).glob("*.py") if not p.name.startswith("_"))
    if only:
        unknown = set(only) - {p.stem for p in files}
        if unknown:
            raise UsageError(f"no corpus model(s) {', '.join(sorted(unknown))} in {folder}")
        files = [p for p in files if p.stem in only]
    if not files:
        raise UsageError(f"{folder} holds no corpus model files")
    return files


def columns(target: str) -> list[str]:
    """'format recipe' of every artifact the target plans, in plan order."""
    return [f"{fmt.name} {recipe}" for fmt, recipe in plan_target(target)]


def _cell_of_entry(entry: dict) -> dict:
    ver = entry["verification"]
    cell = {"status": "verified" if ver.get("status") == "passed" else ver.get("status", "?"),
            "file": entry["file"]}
    golden = ver.get("golden") or {}
    if "max_abs_error" in golden:      # an fp32 artifact over the tolerance fails the build
        cell["max_abs_error"] = golden["max_abs_error"]
    delegation = entry.get("delegation") or {}
    if delegation.get("delegated_share") is not None:
        cell["delegated_share"] = delegation["delegated_share"]
        cell["fallback_ops"] = delegation.get("fallback_ops", [])
    cell["passes"] = entry.get("canonical_passes", [])
    return cell


def build_one(path: Path, meta: dict, target: str, out: Path) -> dict:
    """One model's row: {"model", "family", ..., "cells": {column: cell}}."""
    row = {"model": path.stem, **meta, "cells": {}}
    wanted = columns(target)
    shapes = [arg for s in meta["input_shapes"] for arg in ("--input-shape", ",".join(map(str, s)))]
    task = meta["task"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sdk_builder.cli", "build", "--model-file", f"{path}:build",
             *shapes, "--task", task, "--target", target, "-o", str(out)],
            capture_output=True, text=True, timeout=MODEL_TIMEOUT)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired:
        code, stderr = None, f"error: the build took more than {MODEL_TIMEOUT} s"
    row["seconds"] = round(time.perf_counter() - start, 1)
    row["exit_code"] = code
    bundle = out / bundle_name(path.stem, target)
    manifest = mf.read(bundle) if (bundle / mf.MANIFEST_NAME).is_file() else None
    if manifest is None:
        lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")] or stderr.splitlines()[-1:]
        reason = one_line(Exception(lines[-1].removeprefix("error: ") if lines else f"exit {code}"), 400)
        row["cells"] = {c: {"status": "not built", "reason": reason} for c in wanted}
        return row
    for entry in manifest["artifacts"]:
        row["cells"][f"{entry['format']} {entry['recipe']}"] = _cell_of_entry(entry)
    for skipped in manifest["skipped"]:
        row["cells"][f"{skipped['format']} {skipped['recipe']}"] = {
            "status": "not built", "reason": one_line(Exception(skipped["reason"]), 400)}
    for column in wanted:
        row["cells"].setdefault(column, {"status": "not built", "reason": "not in the bundle"})
    return row


def run_corpus(folder: Path, target: str = "all", only: tuple[str, ...] = (),
               progress: Callable[[str], None] | None = None) -> dict:
    files = discover(folder, only)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pocket-corpus-") as tmp:
        for i, path in enumerate(files, 1):
            meta = read_metadata(path)
            if progress:
                progress(f"[{i}/{len(files)}] {path.stem} ({meta['family']})")
            rows.append(build_one(path, meta, target, Path(tmp)))
    return summarize(rows, target)


def summarize(rows: list[dict], target: str) -> dict:
    cols = columns(target)
    cells = [row["cells"][c] for row in rows for c in cols]
    verified = sum(c["status"] == "verified" for c in cells)
    et_fp32 = [row["cells"].get("executorch-xnnpack fp32", {}) for row in rows]
    full = [c for c in et_fp32 if c.get("status") == "verified"]
    return {
        "target": target, "columns": cols, "rows": rows,
        "families": len({row["family"] for row in rows}),
        "artifacts": len(cells), "verified": verified,
        "pass_rate": verified / len(cells) if cells else 0.0,
        "executorch_fp32_fully_delegated": sum(c.get("delegated_share") == 1.0 for c in full),
        "executorch_fp32_verified": len(full),
        "toolchain": _toolchain(),
    }


def _toolchain() -> dict:
    from sdk_builder.build import toolchain_versions

    return toolchain_versions()


def _short(column: str) -> str:
    return (column.replace("executorch-xnnpack", "xnnpack").replace("executorch-coreml", "et-coreml")
            .replace("int8-static", "int8"))


def _count(n: int, stem: str, one: str = "", many: str = "s") -> str:
    return f"{n} {stem}{one if n == 1 else many}"


def cell_text(cell: dict) -> str:
    if cell["status"] == "verified":
        share = cell.get("delegated_share")
        return "✓" if share is None else f"✓ {share:.0%}"
    return f"✗ {cell['status']}"


def markdown(result: dict) -> str:
    """The README's table: one row per model, one column per artifact, then the reasons."""
    cols = result["columns"]
    lines = ["| model | family | " + " | ".join(f"`{_short(c)}`" for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    reasons: list[str] = []
    for row in result["rows"]:
        texts = []
        for c in cols:
            cell = row["cells"][c]
            text = cell_text(cell)
            if cell["status"] != "verified":
                reasons.append(f"- `{row['model']}` {c}: {cell.get('reason', cell['status'])}")
                text += f" [{len(reasons)}]"
            elif cell.get("delegated_share") not in (None, 1.0):
                ops = ", ".join(cell.get("fallback_ops", [])[:4]) or "?"
                reasons.append(f"- `{row['model']}` {c}: {cell['delegated_share']:.0%} delegated; "
                               f"off the delegate: {ops}")
                text += f" [{len(reasons)}]"
            texts.append(text)
        lines.append(f"| `{row['model']}` | {row['family']} | " + " | ".join(texts) + " |")
    lines += ["", f"**{result['verified']} of {result['artifacts']} artifacts built and verified "
              f"({result['pass_rate']:.1%})** over {_count(len(result['rows']), 'model')} in "
              f"{_count(result['families'], 'famil', 'y', 'ies')} (`pocket doctor --corpus`, target "
              f"`{result['target']}`, ExecuTorch {result['toolchain'].get('executorch', '?')}, "
              f"LiteRT {result['toolchain'].get('ai-edge-litert', '?')}, "
              f"coremltools {result['toolchain'].get('coremltools', '?')}). ✓ N%: verified, "
              "N% of the graph on the delegate (XNNPACK, or Core ML for `et-coreml`)."
              + (f" Rows rebuilt after a fix with `--only`: {', '.join(result['reruns'])}."
                 if result.get("reruns") else "")]
    if reasons:
        lines += ["", "Numbered notes:", "", *[f"{i}. {r[2:]}" for i, r in enumerate(reasons, 1)]]
    return "\n".join(lines)


def write(result: dict, path: Path = RESULTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return path


def load(path: Path = RESULTS) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
