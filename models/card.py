"""Train a zoo model's ablation arms over seeds and write its model card from the runs.

    python -m models.card NAME [--seeds 0 1 2] [--epochs N] [--jobs 2] [--log-dir runs/] [--reuse]

Each run is a `python -m models.train` subprocess (1 thread each, `--jobs` at a time). The
first variant with the first seed becomes the committed weights. Every number in
models/cards/<name>.json and <name>.md comes from these runs. Runs are named by what was
trained (model, loss, training recipe, seed), so with a shared `--log-dir` and `--reuse` a model
whose card needs the same run (e.g. a baseline trained as another card's ablation arm)
reads it instead of training it again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import torch

from models.layers import count_macs, count_params
from models.registry import get
from models.spec import ModelSpec, Variant
from models.train import TrainingRecipe, evaluate, training_recipe

CARDS_DIR = Path(__file__).parent / "cards"
REPO = Path(__file__).resolve().parent.parent


def variants(spec: ModelSpec) -> tuple[Variant, ...]:
    return spec.training.variants or (Variant(spec.name, spec.name),)


def _run_name(spec: ModelSpec, recipe: TrainingRecipe) -> str:
    arm = next(a for a in variants(spec) if a.key == recipe.variant)
    trained = arm.model or spec.name
    what = {k: v for k, v in asdict(recipe).items() if k not in ("variant", "threads")}
    digest = hashlib.sha256(json.dumps([trained, what], sort_keys=True).encode()).hexdigest()[:10]
    return f"{trained}.{recipe.loss}.seed{recipe.seed}.{digest}"


def _run(spec: ModelSpec, recipe: TrainingRecipe, workdir: Path, reuse: bool) -> dict:
    """One training subprocess (or a finished one read back); result dict + weights path."""
    stem = workdir / _run_name(spec, recipe)
    out, res, log = (stem.with_name(stem.name + ext) for ext in (".safetensors", ".json", ".log"))
    if not (reuse and res.is_file() and out.is_file()):
        cmd = [sys.executable, "-m", "models.train", spec.name, "--variant", recipe.variant,
               "--seed", str(recipe.seed), "--epochs", str(recipe.epochs), "--threads", "1",
               "--out", str(out), "--result-json", str(res)]
        with open(log, "w") as fh:
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    return json.loads(res.read_text()) | {"weights_file": str(out), "variant": recipe.variant}


def _summary(arm: Variant, runs: list[dict]) -> dict:
    values = [r["headline"] for r in runs]
    return {"label": arm.label, "model": arm.model, "loss": arm.loss,
            "per_seed": {str(r["recipe"]["seed"]): r["headline"] for r in runs},
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "train_seconds": [r["train_seconds"] for r in runs]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _install_weights(spec: ModelSpec, run: dict) -> Path:
    committed = spec.weights_path()
    committed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run["weights_file"], committed)
    return committed


def train_all(spec: ModelSpec, seeds: list[int], epochs: int | None, jobs: int,
              log_dir: Path, reuse: bool) -> dict[str, list[dict]]:
    """Every variant x seed, `jobs` subprocesses at a time: {variant key: [run, ...]}."""
    plan = [training_recipe(spec, arm.key, seed=s, epochs=epochs)
            for s in seeds for arm in variants(spec)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda r: _run(spec, r, log_dir, reuse), plan))
    return {arm.key: [r for r in runs if r["variant"] == arm.key] for arm in variants(spec)}


def build_card(name: str, seeds: list[int], epochs: int | None, jobs: int, log_dir: Path,
               reuse: bool = False) -> dict:
    """Run all trainings, install the committed weights, return the card's numbers."""
    spec = get(name)
    t0 = time.time()
    by_variant = train_all(spec, seeds, epochs, jobs, log_dir, reuse)
    committed_variant = variants(spec)[0]
    committed = _install_weights(spec, by_variant[committed_variant.key][0])
    model = spec.load()
    inputs, targets = spec.data.heldout()
    recipe = training_recipe(spec, epochs=epochs)
    return {
        "model": name, "task": spec.task, "paper": spec.card.paper,
        "description": spec.description,
        "params": count_params(model), "macs": count_macs(model, spec.input.shape),
        "input_shape": list(spec.input.shape),
        "weights_file": committed.name, "weights_bytes": committed.stat().st_size,
        "weights_sha256": _sha256(committed),
        "metric": spec.task_row.metric, "higher_is_better": spec.task_row.higher_is_better,
        "heldout_samples": len(inputs),
        "committed": {"variant": committed_variant.key, "seed": seeds[0],
                      "heldout": evaluate(model, spec, inputs, targets)},
        "recipe": asdict(replace(recipe, variant="<variant>", loss="<variant's>", seed=-1)),
        "seeds": seeds,
        "variants": {key: _summary(next(a for a in variants(spec) if a.key == key), runs)
                     for key, runs in by_variant.items()},
        "histories": {f"{r['variant']}/seed{r['recipe']['seed']}": r["history"]
                      for runs in by_variant.values() for r in runs},
        "analysis": spec.card.analysis(model, spec) if spec.card.analysis else {},
        "wall_seconds_all_runs": round(time.time() - t0, 1),
        "command": f"python -m models.card {name} --seeds {' '.join(map(str, seeds))} "
                   f"--epochs {recipe.epochs} --jobs {jobs}",
        "command_weights_only": f"python -m models.train {name} --seed {seeds[0]} "
                                f"--epochs {recipe.epochs} --threads 1 "
                                f"--out models/weights/{committed.name}",
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "threads_per_run": 1, "jobs": jobs},
    }


def write_card(card: dict) -> Path:
    """models/cards/<name>.json and .md from the numbers dict."""
    from models.card_md import render

    CARDS_DIR.mkdir(parents=True, exist_ok=True)
    (CARDS_DIR / f"{card['model']}.json").write_text(json.dumps(card, indent=2) + "\n")
    path = CARDS_DIR / f"{card['model']}.md"
    path.write_text(render(card, get(card["model"])))
    return path


def read_card(name: str) -> dict | None:
    """The committed card numbers of a model, or None when it has no card yet."""
    path = CARDS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.card", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the spec's training recipe")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--log-dir", type=Path, default=None, help="run logs (default: a /tmp dir)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse finished runs found in --log-dir instead of retraining")
    p.add_argument("--render-only", action="store_true",
                   help="re-render the .md from the committed .json (no training)")
    args = p.parse_args(argv)
    if args.render_only:
        print(f"wrote {write_card(read_card(args.model))}")
        return 0
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix=f"{args.model}-card-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"run logs in {log_dir}")
    card = build_card(args.model, args.seeds, args.epochs, args.jobs, log_dir, args.reuse)
    print(f"wrote {write_card(card)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
