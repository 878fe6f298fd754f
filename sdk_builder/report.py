"""Summaries of a bundle: the terminal table and report.md."""
from __future__ import annotations

from pathlib import Path

from sdk_builder.quantize.recipes import REFERENCE


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _fmt(value, spec: str) -> str:
    if value is None:
        return "–"
    if value == "inf":
        return "exact"
    return format(value, spec)


def share_text(share: float | None) -> str:
    """A delegated share as a percentage that never rounds a partial share up to 100%."""
    if share is None:
        return "–"
    return "100%" if share >= 1 else f"{min(100 * share, 99.9):.1f}%"


def fp32_reference_bytes(manifest: dict, fmt: str) -> int:
    """The size an artifact's compression is measured against: the same format's fp32
    artifact when it was built (kept or tried), else the model's parameters as float32."""
    built = manifest["artifacts"] + (manifest.get("selection") or {}).get("tried", [])
    for entry in built:
        if entry["format"] == fmt and entry["recipe"] == REFERENCE and entry.get("size_bytes"):
            return int(entry["size_bytes"])
    return 4 * int(manifest["model"]["params"])


def artifact_rows(manifest: dict) -> list[dict]:
    """One flat row per artifact: the numbers people compare."""
    rows = []
    for art in manifest["artifacts"]:
        ver = art["verification"]
        golden, ev = ver.get("golden", {}), ver.get("evaluation", {})
        fp32 = fp32_reference_bytes(manifest, art["format"])
        deleg = art.get("delegation") or {}
        rows.append({
            "artifact": art["file"], "recipe": art["recipe"], "size": human_size(art["size_bytes"]),
            "vs_fp32": _fmt(art["size_bytes"] / fp32, ".2f") + "×" if fp32 else "–",
            "max_abs_error": _fmt(golden.get("max_abs_error"), ".1e"),
            "snr_db": _fmt(golden.get("snr_db"), ".1f"),
            "cosine": _fmt(golden.get("cosine"), ".5f"),
            "metric": ev.get("metric", "–"),
            "pytorch": _fmt(ev.get("pytorch"), ".2%"),
            "artifact_metric": _fmt(ev.get("artifact"), ".2%") + ("*" if ev.get("estimated") else ""),
            "drop": _fmt(ev.get("drop_points"), "+.2f"),
            "agreement": _fmt(ev.get("agreement"), ".2%"),
            "exact": ev.get("exact_outputs_match") or golden.get("exact_outputs_match") or "–",
            "delegated": share_text(deleg.get("delegated_share")),
            "status": ver["status"] + (" (emulated)" if ver.get("emulated") else ""),
        })
    return rows


COLUMNS = (("artifact", "artifact"), ("size", "size"), ("vs fp32", "vs_fp32"),
           ("max abs err", "max_abs_error"), ("SNR dB", "snr_db"), ("task metric", "artifact_metric"),
           ("drop (pts)", "drop"), ("agreement", "agreement"), ("routes/exact", "exact"),
           ("delegated", "delegated"),
           ("status", "status"))


def _columns(rows: list[dict]) -> tuple[tuple[str, str], ...]:
    """COLUMNS without those that say nothing for this bundle ('–' in every row)."""
    return tuple((h, k) for h, k in COLUMNS if k in ("artifact", "status") or any(r[k] != "–" for r in rows))


def summary_table(manifest: dict):
    """A rich Table for the terminal."""
    from rich.table import Table

    model = manifest["model"]
    table = Table(title=f"{model['name']} — {manifest.get('target', '')} bundle "
                        f"({model['params']:,} params, {model['macs'] / 1e6:.1f} M MACs)")
    rows = artifact_rows(manifest)
    columns = _columns(rows)
    for header, key in columns:
        table.add_column(header, justify="left" if key in ("artifact", "status") else "right")
    for row in rows:
        status = row["status"]
        colour = {"passed": "green", "failed": "red"}.get(status.split()[0], "yellow")
        table.add_row(*[row[k] for _, k in columns[:-1]], f"[{colour}]{status}[/]")
    return table


def _estimate_note(manifest: dict) -> str:
    estimated = [a for a in manifest["artifacts"]
                 if (a["verification"].get("evaluation") or {}).get("estimated")]
    if not estimated:
        return ""
    why = estimated[0]["verification"].get("reason", "it cannot run on this machine")
    return (" Values marked * are estimated in PyTorch with the weights compressed as the "
            f"recipe does, for artifacts that did not run here ({why}).")


def _emulation_note(manifest: dict) -> str:
    if not any(a["verification"].get("emulated") for a in manifest["artifacts"]):
        return ""
    return (" 'passed (emulated)': a Core ML program run by runtime_py's interpreter here "
            "(numpy, fp16 rounded after every op): measured numbers, not Core ML's own; a "
            "device may differ in the last fp16 bits.")


def markdown_table(manifest: dict) -> str:
    rows = artifact_rows(manifest)
    columns = _columns(rows)
    lines = ["| " + " | ".join(h for h, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"`{row[k]}`" if k == "artifact" else row[k]
                                       for _, k in columns) + " |")
    return "\n".join(lines)


def write_chart(bundle: Path, manifest: dict) -> Path:
    """report.png: size and task metric of every artifact, PyTorch's metric as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arts = manifest["artifacts"]
    names = [a["file"].replace(manifest["model"]["name"] + ".", "") for a in arts]
    sizes = [a["size_bytes"] / 2**20 for a in arts]
    evals = [a["verification"].get("evaluation") for a in arts]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.6 * len(arts) + 2), sharey=True)
    left.bar_label(left.barh(names, sizes, color="#4c72b0"), fmt="%.2f MB", padding=3)
    left.set_xlabel("size (MB)")
    left.set_xlim(0, max(sizes) * 1.25)
    left.invert_yaxis()
    scored = [(n, e["artifact"] * 100, bool(e.get("estimated"))) for n, e in zip(names, evals) if e]
    if scored:
        bars = right.barh([n for n, _, _ in scored], [v for _, v, _ in scored], color="#55a868",
                          hatch=["//" if est else "" for _, _, est in scored], edgecolor="white")
        right.bar_label(bars, labels=[f"{v:.1f}%{' est.' if est else ''}" for _, v, est in scored],
                        padding=3)
        reference = next(e for e in evals if e)
        right.axvline(reference["pytorch"] * 100, color="black", ls="--", label="PyTorch fp32")
        low = min([v for _, v, _ in scored] + [reference["pytorch"] * 100])
        right.set_xlim(max(0.0, low - 5), 106)
        right.set_xticks([t for t in right.get_xticks() if max(0.0, low - 5) <= t <= 100])
        right.set_xlabel(f"{reference['metric']} (%) on {reference['samples']} held-out samples")
        handles, _ = right.get_legend_handles_labels()
        if any(est for *_, est in scored):
            from matplotlib.patches import Patch

            handles.append(Patch(facecolor="#55a868", hatch="//", edgecolor="white",
                                 label="estimated in PyTorch"))
        right.legend(handles=handles, loc="lower left", fontsize=8)
    else:
        right.text(0.5, 0.5, "no evaluation data", ha="center", transform=right.transAxes)
    fig.suptitle(f"{manifest['model']['name']} — {manifest.get('target', '')} bundle")
    fig.tight_layout()
    path = Path(bundle) / "report.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _selection_lines(manifest: dict) -> list[str]:
    selection = manifest.get("selection")
    if not selection:
        return []
    lines = [f"## Recipes tried (budget: {selection['max_drop_points']:g} point{'' if selection['max_drop_points'] == 1 else 's'} of the task metric)", "",
             "| format | recipe | size | vs fp32 | SNR dB | drop (pts) | kept | why |",
             "|---|---|---|---|---|---|---|---|"]
    for t in selection["tried"]:
        if t["size_bytes"] is None:      # not applicable, or not built: the reason is the row
            lines.append(f"| {t['format']} | `{t['recipe']}` | – | – | – | – | no | {t['why']} |")
            continue
        drop = "n/a" if t["drop_points"] is None else \
            f"{t['drop_points']:+.2f}{' (est.)' if t['estimated'] else ''}"
        ratio = t["size_bytes"] / fp32_reference_bytes(manifest, t["format"])
        lines.append(f"| {t['format']} | `{t['recipe']}` | {human_size(t['size_bytes'])} | {ratio:.2f}× | "
                     f"{_fmt(t['snr_db'], '.1f')} | {drop} | {'**yes**' if t['kept'] else 'no'} | {t['why']} |")
    return lines + ["", "![recipes tried](report_recipes.png)", ""]


def delegation_note(entry: dict) -> str | None:
    """One line naming the ops an artifact runs outside its delegate, and why; None if none."""
    deleg = entry.get("delegation") or {}
    fallbacks = deleg.get("fallback_ops") or []
    if not fallbacks:
        return None
    counts = deleg.get("fallback_counts") or {}
    reasons = deleg.get("fallback_reasons") or {}
    ops = "; ".join(f"{op}{f' ×{counts[op]}' if counts.get(op, 1) > 1 else ''}"
                    f"{f' ({reasons[op]})' if op in reasons else ''}" for op in fallbacks)
    return f"{entry['file']}: {share_text(deleg.get('delegated_share', 0))} of ops delegated; not delegated: {ops}"


def _diagnosis_lines(manifest: dict) -> list[str]:
    lines = [f"- {note}" for note in map(delegation_note, manifest["artifacts"]) if note]
    for art in manifest["artifacts"] + [t for t in manifest.get("selection", {}).get("tried", [])
                                        if t.get("worst_layers")]:
        worst = art.get("worst_layers") or art.get("verification", {}).get("worst_layers")
        if worst:
            layers = ", ".join(f"`{w['layer']}` ({w['snr_db']:.1f} dB)" for w in worst)
            lines.append(f"- `{art['file']}` loses more than the budget; worst layers by SNR vs "
                         f"fp32: {layers}")
    for art in manifest["artifacts"]:
        if art["verification"]["status"] != "passed":
            lines.append(f"- `{art['file']}`: {art['verification'].get('reason', '')}")
    for skipped in manifest.get("skipped", []):
        lines.append(f"- not built: {skipped['reason']}")
    return (["## Notes", ""] + lines + [""]) if lines else []


def write_report(bundle: Path, manifest: dict) -> Path:
    """report.md (+ PNG charts): what was built, how it was verified, how well it does."""
    model, inp = manifest["model"], manifest["input"]
    ev = next((a["verification"].get("evaluation") for a in manifest["artifacts"]
               if a["verification"].get("evaluation")), None)
    lines = [
        f"# {model['name']} — {manifest.get('target', '')} bundle", "",
        f"{model.get('description', '')}", "",
        f"- task: {model['task']}; params: {model['params']:,}; MACs: {model['macs']:,}",
        f"- input `{inp['name']}`: {inp['shape']} {inp['dtype']} {inp['layout']} {inp['color']}, "
        f"pixels mapped to {inp['range']}, mean {inp['mean']}, std {inp['std']}"
        f"{' (in the graph)' if inp['normalize_in_graph'] else ' (applied before the model)'}",
        *(f"- extra input `{e['name']}`: {e['shape']} {e['dtype']}, passed as it is (after the image)"
          for e in manifest.get("extra_inputs", [])),
        f"- calibration (static int8 recipes): {manifest.get('calibration', 'n/a')}",
        f"- built {manifest['created']} with "
        + ", ".join(f"{k} {v}" for k, v in manifest["toolchain"].items()), "",
        "## Artifacts", "", markdown_table(manifest), "", "![size and accuracy](report.png)", "",
    ]
    if ev:
        lines += [f"The task metric is {ev['metric']} on {ev['samples']} held-out samples; PyTorch "
                  f"fp32 scores {ev['pytorch']:.2%}. 'drop' is PyTorch minus the artifact, in points. "
                  f"'agreement' is {ev.get('agreement_name', 'the agreement')} with PyTorch on the "
                  "same samples." + _estimate_note(manifest) + _emulation_note(manifest), ""]
        if any("exact" in o.get("compare", "") for o in manifest["outputs"]):
            names = ", ".join(o["name"] for o in manifest["outputs"] if o.get("compare") == "exact")
            lines += [f"'routes/exact': inputs on which the artifact's discrete outputs ({names}) "
                      "equal PyTorch's element for element; an artifact that differs is not "
                      "delivered.", ""]
    else:
        lines += ["Task metric: n/a (the model has no evaluation data); the numbers above are "
                  "numerical parity with PyTorch only.", ""]
    warnings = [f"- `{a['file']}`: {a['recipe_details']['warning']}" for a in manifest["artifacts"]
                if (a.get("recipe_details") or {}).get("warning")]
    if warnings:
        lines += ["Warnings:", "", *warnings, ""]
    lines += ["'vs fp32' divides the size by the same format's fp32 artifact, or, for formats "
              "without an fp32 recipe (Core ML), by the model's parameters stored as float32 "
              f"({human_size(4 * model['params'])}).", ""]
    lines += ["max abs err, SNR and cosine compare each artifact's outputs with PyTorch's on the "
              f"{len(manifest['golden']['inputs'])} golden inputs in `golden/` (worst case). "
              "An fp32 artifact fails the build above "
              f"{manifest['tolerances']['fp32_max_abs_error']:.0e} max abs error.", ""]
    lines += _selection_lines(manifest) + _diagnosis_lines(manifest)
    write_chart(bundle, manifest)
    if any(t["size_bytes"] is not None for t in manifest.get("selection", {}).get("tried", [])):
        write_selection_chart(bundle, manifest)
    path = Path(bundle) / "report.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def write_selection_chart(bundle: Path, manifest: dict) -> Path:
    """report_recipes.png: per recipe tried, its size vs fp32 and its task-metric drop;
    kept recipes are starred, recipes over the budget drawn in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    selection = manifest["selection"]
    budget = selection["max_drop_points"]
    tried = [t for t in selection["tried"] if t["size_bytes"] is not None]   # built ones
    names = [f"{'★ ' if t['kept'] else ''}{t['format']} {t['recipe']}" for t in tried]
    ratios = [t["size_bytes"] / fp32_reference_bytes(manifest, t["format"]) for t in tried]
    drops = [t["drop_points"] for t in tried]
    over = [d is not None and d > budget for d in drops]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.38 * len(tried) + 1.8), sharey=True)
    colours = ["#c44e52" if o else ("#55a868" if t["kept"] else "#8c8c8c") for o, t in zip(over, tried)]
    left.bar_label(left.barh(names, ratios, color=colours), fmt="%.2f×", padding=3, fontsize=8)
    left.set_xlim(0, max(ratios) * 1.2)
    left.set_xlabel("size vs fp32 (lower is smaller)")
    left.invert_yaxis()
    shown = [0.0 if d is None else d for d in drops]
    bars = right.barh(names, shown, color=colours)
    right.bar_label(bars, labels=["n/a" if d is None else f"{d:+.2f}{' est.' if t['estimated'] else ''}"
                                  for d, t in zip(drops, tried)], padding=3, fontsize=8)
    right.axvline(budget, color="#c44e52", ls="--", lw=1, label=f"budget ({budget:g} pts)")
    right.axvline(0, color="black", lw=0.6)
    right.set_xscale("symlog", linthresh=1.0)
    low, high = min(shown + [0.0]), max(shown + [budget])
    right.set_xlim(min(-1.0, low * 1.5), high * 3)
    right.set_xlabel("task-metric drop vs PyTorch fp32 (points, symlog; lower is better)")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{manifest['model']['name']}: recipes tried — ★ kept (smallest within budget), "
                 "red = over budget")
    fig.tight_layout()
    path = Path(bundle) / "report_recipes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
