"""Train any zoo model from its spec, deterministically from a seed.

    python -m models.train NAME [--variant KEY] [--epochs N] [--steps N] [--seed 0]
                                [--out PATH] [--batch-size B] [--threads 1]
    pocket train NAME ...                      (the same entry point)

The model's TrainSpec gives the loss(es), forward, augmentation and training recipe; its DataSpec
the train and held-out splits; its task the held-out metric. `--variant` picks an arm of
the card's ablation (another loss, or another zoo model trained with this training recipe).
Runs unchanged under `torchrun` (DistributedDataParallel, gloo on CPU): WORLD_SIZE/RANK
from the environment select the distributed path; only rank 0 evaluates and writes.
Bit-exact reproduction holds for the same world size, thread count and torch build.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from models.registry import get
from models.spec import ModelSpec, TrainSpec, Variant
from models.weights_io import save_weights


@dataclass(frozen=True)
class TrainingRecipe:
    """Everything that defines one training run ("recipe" alone, elsewhere, is a
    quantization recipe)."""

    variant: str = ""
    loss: str = ""
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 1
    max_steps: int | None = None


def training_recipe(spec: ModelSpec, variant: str | None = None, **overrides) -> TrainingRecipe:
    """The spec's training recipe for one variant (default: the committed one), with overrides."""
    ts = _training(spec)
    arm = _variant(spec, variant)
    base = TrainingRecipe(variant=arm.key, loss=arm.loss or next(iter(ts.losses)), epochs=ts.epochs,
                          batch_size=ts.batch_size, lr=ts.lr, weight_decay=ts.weight_decay,
                          warmup_epochs=ts.warmup_epochs)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _training(spec: ModelSpec) -> TrainSpec:
    if spec.training is None or spec.data is None:
        raise SystemExit(f"{spec.name} has no training recipe or data in its spec")
    return spec.training


def _variant(spec: ModelSpec, key: str | None) -> Variant:
    arms = spec.training.variants or (Variant(spec.name, spec.name),)
    if key is None:
        return arms[0]
    for arm in arms:
        if arm.key == key:
            return arm
    raise SystemExit(f"{spec.name} has no variant '{key}'; it has: {', '.join(a.key for a in arms)}")


class TrainForward(nn.Module):
    """The spec's training forward as one module call, so DDP sees (and syncs) it."""

    def __init__(self, model: nn.Module, forward) -> None:
        super().__init__()
        self.model = model
        self._forward = forward

    def forward(self, x: torch.Tensor):
        return self._forward(self.model, x) if self._forward else self.model(x)


def first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def evaluate(model: nn.Module, spec: ModelSpec, inputs: torch.Tensor, targets: torch.Tensor,
             batch: int = 50) -> dict:
    """The task's metrics of `model` (eval mode) on preprocessed held-out inputs."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        outs = [first_output(model(inputs[i:i + batch])).numpy() for i in range(0, len(inputs), batch)]
    model.train(was_training)
    return spec.task_row.metrics(np.concatenate(outs), targets.numpy())


def _dist_env() -> tuple[int, int]:
    """(rank, world_size); initialises the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return rank, world


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _run_epoch(net: nn.Module, opt, sched, loss_fn, augment, recipe: TrainingRecipe, batches: list,
               x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, step: int) -> tuple[float, int]:
    """One pass over `batches` (index tensors); returns (mean loss, global step)."""
    total, done = 0.0, 0
    for idx in batches:
        if recipe.max_steps is not None and step >= recipe.max_steps:
            break
        xb, yb = augment(x[idx], y[idx], gen) if augment else (x[idx], y[idx])
        loss = loss_fn(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
        step, done = step + 1, done + 1
    return total / max(1, done), step


def _model_under_training(spec: ModelSpec, recipe: TrainingRecipe) -> nn.Module:
    arm = _variant(spec, recipe.variant or None)
    return (get(arm.model) if arm.model else spec).build()


def train(name: str, recipe: TrainingRecipe, out: Path | None, log=print) -> dict:
    """Train model `name` with the training recipe `recipe`; rank 0 writes `out` and returns
    the results dict (its "recipe" is that training recipe)."""
    rank, world = _dist_env()
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    spec = get(name)
    ts = _training(spec)
    model = _model_under_training(spec, recipe)
    net: nn.Module = TrainForward(model, ts.forward)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net)
    x, y = spec.data.train()
    hx, hy = spec.data.heldout()
    sampler = DistributedSampler(range(len(x)), num_replicas=world, rank=rank,
                                 shuffle=True, seed=recipe.seed, drop_last=True)
    per_rank = recipe.batch_size // world
    steps_per_epoch = len(sampler) // per_rank
    total_steps = recipe.epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    warm = int(recipe.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, warm, total_steps))
    gen = torch.Generator().manual_seed(recipe.seed * 1000 + rank)
    loss_fn, metric = ts.losses[recipe.loss], spec.task_row.metric
    history, step, t0 = [], 0, time.time()
    for epoch in range(recipe.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        batches = [order[i * per_rank:(i + 1) * per_rank] for i in range(steps_per_epoch)]
        mean_loss, step = _run_epoch(net, opt, sched, loss_fn, spec.data.augment, recipe, batches,
                                     x, y, gen, step)
        stopping = recipe.max_steps is not None and step >= recipe.max_steps
        last = epoch + 1 == recipe.epochs or stopping
        if rank == 0 and ((epoch + 1) % ts.eval_every == 0 or last):
            values = evaluate(model, spec, hx, hy)
            history.append({"epoch": epoch + 1, "loss": round(mean_loss, 5), "heldout": values})
            log(f"[{name} {recipe.variant} seed={recipe.seed}] epoch {epoch + 1}/{recipe.epochs} "
                f"loss {mean_loss:.4f} held-out {metric} {values[metric]:.4f} ({time.time() - t0:.0f}s)")
        if stopping:
            break
    final = history[-1]["heldout"] if history else None
    result = {"model": name, "recipe": asdict(recipe), "world_size": world, "steps": step,
              "train_seconds": round(time.time() - t0, 1), "history": history,
              "metric": metric, "heldout": final, "headline": final[metric] if final else None}
    if rank == 0 and out is not None:
        save_weights(model, out)
        log(f"wrote {out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--variant", default=None, help="ablation arm (default: the committed one)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--steps", type=int, default=None, help="cap on optimiser steps (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="weights path (.safetensors)")
    p.add_argument("--result-json", type=Path, default=None, help="write run results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    spec = get(args.model)
    recipe = training_recipe(spec, args.variant, epochs=args.epochs, batch_size=args.batch_size,
                             seed=args.seed, threads=args.threads, max_steps=args.steps)
    result = train(args.model, recipe, args.out)
    if args.result_json is not None and int(os.environ.get("RANK", "0")) == 0:
        args.result_json.parent.mkdir(parents=True, exist_ok=True)
        args.result_json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
