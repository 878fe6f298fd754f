"""Render a model card (markdown) from the numbers dict of models.card and the model's spec.

Numbers come from the dict (i.e. from runs); prose comes from the spec's CardSpec/DataSpec.
"""
from __future__ import annotations

from models.spec import ModelSpec

RAW_METRICS = ("abs_rel", "mae")      # reported as plain numbers, not percentages


def fmt_metric(name: str, value: float) -> str:
    return f"{value:.4f}" if name.split("/")[0] in RAW_METRICS else f"{100 * value:.2f}%"


def headline(card: dict) -> float:
    return card["committed"]["heldout"][card["metric"]]


def _architecture(card: dict, spec: ModelSpec) -> list[str]:
    lines = [f"# Model card: {card['model']}", "", card["description"], "",
             "## Architecture", f"{card['paper']}.", "", spec.card.architecture, "",
             f"- Task: {card['task']}",
             f"- Parameters: **{card['params']:,}**",
             f"- MACs at {'×'.join(map(str, card['input_shape']))}: **{card['macs']:,}** "
             "(convolutions, linear layers and matrix products of one forward pass)",
             f"- Weights: `{card['weights_file']}`, {card['weights_bytes']:,} bytes fp32, "
             f"sha256 `{card['weights_sha256']}`"]
    if spec.card.render_analysis and card.get("analysis"):
        lines += spec.card.render_analysis(card["analysis"])
    return lines + [""]


def _data_and_training(card: dict, spec: ModelSpec) -> list[str]:
    rc = card["recipe"]
    times = [t for v in card["variants"].values() for t in v["train_seconds"]]
    return [
        "## Data and split", spec.data.description, "",
        "## Preprocessing (identical at run time)", spec.data.preprocessing, "",
        "## Training recipe (identical for every variant and seed)",
        f"AdamW (lr {rc['lr']}, weight decay {rc['weight_decay']}), batch {rc['batch_size']}, "
        f"{rc['epochs']} epochs, linear warmup {rc['warmup_epochs']} epoch then cosine to 0.",
        f"One CPU thread per run; torch {card['environment']['torch']}. "
        f"Train time per run: {min(times):.0f}–{max(times):.0f} s "
        f"({card['environment']['jobs']} runs in parallel on a shared 2-core CPU).", "",
    ]


def _label(spec: ModelSpec, key: str) -> str:
    """'iou/3' -> 'IoU grass' using the model's labels."""
    name, _, index = key.partition("/")
    if index and spec.labels and int(index) < len(spec.labels):
        return f"{name} {spec.labels[int(index)]}"
    return key


def _results(card: dict, spec: ModelSpec) -> list[str]:
    held = card["committed"]["heldout"]
    metric = card["metric"]
    lines = [f"## Held-out results ({card['heldout_samples']:,} samples never seen in training)",
             f"Committed weights ({card['variants'][card['committed']['variant']]['label']}, "
             f"seed {card['committed']['seed']}): "
             f"**{metric} {fmt_metric(metric, held[metric])}**", ""]
    rest = [k for k in held if k != metric]
    if rest:
        lines += ["| metric | value |", "|---|---:|"]
        lines += [f"| {_label(spec, k)} | {fmt_metric(k, held[k])} |" for k in rest]
        lines.append("")
    return lines


def _ablation(card: dict) -> list[str]:
    seeds, arms, metric = card["seeds"], card["variants"], card["metric"]
    lines = [f"## Ablation: {' vs '.join(a['label'] for a in arms.values())} "
             f"(same recipe, {len(seeds)} seed(s), {metric})", "",
             "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |",
             "|---" * (len(seeds) + 2) + "|"]
    for arm in arms.values():
        cells = " | ".join(fmt_metric(metric, arm["per_seed"][str(s)]) for s in seeds)
        lines.append(f"| {arm['label']} | {cells} | {fmt_metric(metric, arm['mean'])} ± "
                     f"{fmt_metric(metric, arm['std'])} |")
    return lines + ["", verdict(card), ""]


def verdict(card: dict) -> str:
    """One sentence comparing the first two arms' mean difference with the seed spread."""
    arms = list(card["variants"].values())
    if len(arms) < 2:
        return ""
    a, b = arms[0], arms[1]
    diff = 100 * (a["mean"] - b["mean"])
    spread = 100 * max(a["std"], b["std"])
    if len(card["seeds"]) < 2:
        return (f"{a['label']} − {b['label']}: {diff:+.2f} pt from a single seed; no seed spread "
                "was measured, so this is not evidence either way.")
    size = "smaller" if abs(diff) <= spread else "larger"
    return (f"{a['label']} − {b['label']}: {diff:+.2f} pt (mean over seeds), {size} than the "
            f"largest seed-to-seed std ({spread:.2f} pt).")


def _reproduce_and_limits(card: dict, spec: ModelSpec) -> list[str]:
    limits = [f"- {text}" for text in spec.card.limitations]
    return [
        "## Reproduce",
        f"- Card and committed weights: `{card['command']}`",
        f"- Committed weights only: `{card['command_weights_only']}`", "",
        "Bit-exact for the same torch build, thread count (1) and world size (1);",
        "`torchrun` runs the same script with DistributedDataParallel but a different",
        "batch partition, so its weights differ.", "",
        "## Limitations", *limits,
        f"- The held-out set has {card['heldout_samples']:,} samples: differences of a fraction "
        "of a point between variants are within noise unless the seed table says otherwise.", "",
    ]


def render(card: dict, spec: ModelSpec) -> str:
    """The markdown card; every number is read from `card`."""
    parts = _architecture(card, spec) + _data_and_training(card, spec) + _results(card, spec)
    if len(card["variants"]) > 1:
        parts += _ablation(card)
    return "\n".join(parts + _reproduce_and_limits(card, spec))
