"""Budget-driven selection: try a format's recipes, keep the smallest within the metric budget.

Every recipe of the plan ends as one row of manifest['selection']['tried']: kept, dropped
(over the budget, larger, failed verification, failed to export) or not applicable, with why."""
from __future__ import annotations

import shutil
from pathlib import Path

from runtime_py import manifest as mf
from sdk_builder.formats import Format, get_format, plan_target

DEFAULT_MAX_DROP = 1.0   # task-metric points; over it the report explains where quantization breaks


def candidates(target: str, recipes: list[str] | None, exhaustive: bool) -> list[tuple[Format, str]]:
    """The (format, recipe) pairs to build: the target's plan, or with a budget every recipe
    of the target's formats (narrowed to `recipes` when given)."""
    if not exhaustive:
        return plan_target(target, recipes)
    if recipes:
        plan_target(target, recipes)  # refuses unknown names with a suggestion
    formats = dict.fromkeys(f for f, _ in plan_target(target))
    return [(f, r) for f in formats for r in f.recipes if not recipes or r in recipes]


def _drop(entry: dict) -> float | None:
    evaluation = entry["verification"].get("evaluation")
    return None if not evaluation else evaluation["drop_points"]


def _choose(group: list[dict], max_drop: float) -> tuple[dict | None, dict[str, str]]:
    """The entry to keep for one format and why each entry was kept or dropped."""
    if all(_drop(e) is None for e in group):
        default = get_format(group[0]["format"]).recipes[0]
        keep = next((e for e in group if e["recipe"] == default), group[0])
        why = "no evaluation data: the budget cannot be checked, kept the format's default recipe"
        return keep, {e["file"]: why if e is keep else "not the default recipe" for e in group}
    within = [e for e in group if _drop(e) is not None and _drop(e) <= max_drop]
    keep = min(within, key=lambda e: e["size_bytes"]) if within else None
    reasons = {}
    for e in group:
        drop = _drop(e)
        if e is keep:
            reasons[e["file"]] = f"smallest within the budget (drop {drop:+.2f} pts)"
        elif drop is None:
            reasons[e["file"]] = "no task metric measured"
        elif drop > max_drop:
            reasons[e["file"]] = f"drop {drop:+.2f} pts exceeds the {max_drop:g}-point budget"
        else:
            reasons[e["file"]] = f"within budget but larger than {keep['file']}"
    return keep, reasons


def keep_within_budget(stage: Path, manifest: dict, max_drop: float,
                       unbuilt: list[dict] = ()) -> None:
    """Drop, per format, every artifact but the smallest within `max_drop` points; record why,
    with a row for each planned recipe that was not built (`unbuilt`: format, recipe, reason,
    applicable). A format left with no artifact at all is listed in manifest['skipped']."""
    tried, kept = [], []
    formats = dict.fromkeys([a["format"] for a in manifest["artifacts"]] + [u["format"] for u in unbuilt])
    for fmt in formats:
        group = [a for a in manifest["artifacts"] if a["format"] == fmt]
        keep, reasons = _choose(group, max_drop) if group else (None, {})
        for e in group:
            tried.append(_tried_row(e, e is keep, reasons[e["file"]]))
            if e is keep:
                kept.append(e)
            else:
                remove_artifact(stage, e)
        missing = [u for u in unbuilt if u["format"] == fmt]
        tried += [{"format": fmt, "recipe": u["recipe"], "file": None, "size_bytes": None,
                   "snr_db": None, "drop_points": None, "estimated": False, "kept": False,
                   "applicable": u["applicable"], "why": u["reason"]} for u in missing]
        if not group:
            manifest["skipped"].append({"format": fmt, "recipe": ", ".join(u["recipe"] for u in missing),
                                        "reason": f"no recipe of {fmt} could be built: "
                                                  + "; ".join(u["reason"] for u in missing)})
    manifest["artifacts"] = kept
    manifest["selection"] = {"max_drop_points": max_drop, "tried": tried}


def _tried_row(entry: dict, kept: bool, why: str) -> dict:
    golden = entry["verification"].get("golden", {})
    return {"format": entry["format"], "recipe": entry["recipe"], "file": entry["file"],
            "size_bytes": entry["size_bytes"], "snr_db": golden.get("snr_db"),
            "drop_points": _drop(entry),
            "estimated": bool((entry["verification"].get("evaluation") or {}).get("estimated")),
            "kept": kept, "applicable": True, "why": why,
            "worst_layers": entry["verification"].get("worst_layers")}


def remove_artifact(stage: Path, entry: dict) -> None:
    path = mf.resolve(stage, entry["file"])
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    for row in entry["golden_outputs"]:
        for name in row:
            mf.resolve(stage, name).unlink(missing_ok=True)
