"""Train Bias Loss and cross-entropy with one recipe and write the model card.

    python -m models.card skipnet_m [--seeds 0 1 2] [--epochs N] [--jobs 2]

Each run is a `python -m models.train` subprocess (1 thread each, `--jobs` at a time).
The Bias Loss run with the first seed becomes the committed weights. Every number in
models/cards/<name>.json and <name>.md comes from these runs.
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
from pathlib import Path

import torch

from models import data
from models.layers import count_macs, count_params
from models.registry import get
from models.train import Recipe

CARDS_DIR = Path(__file__).parent / "cards"


def _run(name: str, loss: str, seed: int, epochs: int, workdir: Path,
         reuse: bool = False) -> dict:
    """One training subprocess; returns its result dict (with weights path).

    With `reuse`, a finished run already in `workdir` (same epochs) is read, not retrained.
    """
    out = workdir / f"{name}.{loss}.seed{seed}.safetensors"
    res = workdir / f"{name}.{loss}.seed{seed}.json"
    log = workdir / f"{name}.{loss}.seed{seed}.log"
    if reuse and res.is_file() and out.is_file():
        result = json.loads(res.read_text())
        if result["recipe"]["epochs"] == epochs and result["recipe"]["loss"] == loss:
            return result | {"weights_file": str(out)}
    cmd = [sys.executable, "-m", "models.train", name, "--loss", loss, "--seed", str(seed),
           "--epochs", str(epochs), "--threads", "1", "--out", str(out),
           "--result-json", str(res)]
    with open(log, "w") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT,
                       cwd=Path(__file__).resolve().parent.parent)
    result = json.loads(res.read_text())
    result["weights_file"] = str(out)
    return result


def _summary(runs: list[dict]) -> dict:
    accs = [r["heldout_acc"] for r in runs]
    return {"per_seed": {str(r["recipe"]["seed"]): r["heldout_acc"] for r in runs},
            "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "train_seconds": [r["train_seconds"] for r in runs]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_card(name: str, seeds: list[int], epochs: int, jobs: int, log_dir: Path,
               reuse: bool = False) -> dict:
    """Run all trainings, install the committed weights, return the card's numbers."""
    spec = get(name)
    plan = [(loss, s) for s in seeds for loss in ("bias", "ce")]
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda p: _run(name, p[0], p[1], epochs, log_dir, reuse),
                                plan))
    by_loss = {loss: [r for r, (l2, _) in zip(results, plan) if l2 == loss]
               for loss in ("bias", "ce")}
    committed = spec.weights_path()
    committed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(by_loss["bias"][0]["weights_file"], committed)
    final = spec.load()
    ev = data.evaluation()
    from models.train import evaluate

    model = spec.build()
    return {
        "model": name,
        "description": spec.description,
        "params": count_params(model),
        "macs": count_macs(model, spec.input.shape),
        "input_shape": list(spec.input.shape),
        "feature_map_shape": list(model.forward_features(torch.zeros(spec.input.shape)).shape),
        "weights_file": committed.name,
        "weights_bytes": committed.stat().st_size,
        "weights_sha256": _sha256(committed),
        "committed_run": {"loss": "bias", "seed": seeds[0]},
        "committed_heldout_acc": evaluate(final, ev.inputs, ev.targets),
        "recipe": Recipe(loss="<bias|ce>", epochs=epochs, seed=-1).__dict__ | {"seed": seeds},
        "seeds": seeds,
        "results": {loss: _summary(runs) for loss, runs in by_loss.items()},
        "histories": {f"{r['recipe']['loss']}/seed{r['recipe']['seed']}": r["history"]
                      for r in results},
        "wall_seconds_all_runs": round(time.time() - t0, 1),
        "command": f"python -m models.card {name} --seeds {' '.join(map(str, seeds))} "
                   f"--epochs {epochs} --jobs {jobs}",
        "command_weights_only": f"python -m models.train {name} --loss bias --seed {seeds[0]} "
                                f"--epochs {epochs} --threads 1 "
                                f"--out models/weights/{committed.name}",
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "threads_per_run": 1, "jobs": jobs},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.card", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--log-dir", type=Path, default=None, help="run logs (default: a /tmp dir)")
    p.add_argument("--reuse", action="store_true",
                   help="reuse finished runs found in --log-dir instead of retraining")
    args = p.parse_args(argv)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix=f"{args.model}-card-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"run logs in {log_dir}")
    card = build_card(args.model, args.seeds, args.epochs, args.jobs, log_dir, args.reuse)
    from models.card_md import render

    CARDS_DIR.mkdir(parents=True, exist_ok=True)
    (CARDS_DIR / f"{args.model}.json").write_text(json.dumps(card, indent=2) + "\n")
    (CARDS_DIR / f"{args.model}.md").write_text(render(card))
    print(f"wrote {CARDS_DIR / (args.model + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
