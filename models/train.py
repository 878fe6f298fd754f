"""Train a zoo classifier on MNIST-5k, deterministically from a seed.

    python -m models.train skipnet_m [--loss bias|ce] [--epochs N] [--steps N] [--seed 0]
                                     [--out PATH] [--batch-size 128] [--threads 1]

Runs unchanged under `torchrun` (DistributedDataParallel, gloo on CPU): WORLD_SIZE/RANK
from the environment select the distributed path; only rank 0 evaluates and writes.
Bit-exact reproduction holds for the same world size, thread count and torch build.
`--card` trains Bias Loss and cross-entropy and writes the model card (see models.card).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from models import data
from models.bias_loss import bias_loss
from models.registry import get
from models.weights_io import save_weights


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run (identical for both losses)."""

    loss: str = "bias"
    epochs: int = 12
    batch_size: int = 128
    lr: float = 4e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 1
    max_steps: int | None = None


class WithFeatures(nn.Module):
    """Wrap a model so one forward returns (logits, last feature map); DDP-friendly."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.forward_features(x)
        return self.model.forward_head(feats), feats


def _dist_env() -> tuple[int, int]:
    """(rank, world_size); initialises the gloo process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return rank, world


def _seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def evaluate(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
             batch: int = 250) -> float:
    """Top-1 accuracy of `model` (eval mode) on preprocessed inputs."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            correct += (model(inputs[i:i + batch]).argmax(1) == targets[i:i + batch]).sum().item()
    model.train(was_training)
    return correct / len(inputs)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _loss(recipe: Recipe, logits: torch.Tensor, y: torch.Tensor,
          feats: torch.Tensor) -> torch.Tensor:
    if recipe.loss == "bias":
        return bias_loss(logits, y, feats)
    return F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)


def _run_epoch(net: nn.Module, opt: torch.optim.Optimizer, sched, recipe: Recipe,
               batches: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               gen: torch.Generator, step: int) -> tuple[float, int]:
    """One pass over `batches` (index tensors); returns (mean loss, global step)."""
    total, done = 0.0, 0
    for idx in batches:
        if recipe.max_steps is not None and step >= recipe.max_steps:
            break
        xb = data.augment(x[idx], gen)
        logits, feats = net(xb)
        loss = _loss(recipe, logits, y[idx], feats)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
        step, done = step + 1, done + 1
    return total / max(1, done), step


def train(name: str, recipe: Recipe, out: Path | None, log=print) -> dict:
    """Train model `name` with `recipe`; rank 0 writes `out` and returns the results dict."""
    rank, world = _dist_env()
    _seed_everything(recipe.seed, recipe.threads)
    model = get(name).build()
    net: nn.Module = WithFeatures(model)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net)
    x, y = data.train_split()
    hx, hy = data.heldout_split()
    sampler = DistributedSampler(range(len(x)), num_replicas=world, rank=rank,
                                 shuffle=True, seed=recipe.seed, drop_last=True)
    per_rank = recipe.batch_size // world
    steps_per_epoch = len(sampler) // per_rank
    total_steps = recipe.epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    warm = int(recipe.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, warm, total_steps))
    gen = torch.Generator().manual_seed(recipe.seed * 1000 + rank)
    history, step, t0 = [], 0, time.time()
    for epoch in range(recipe.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        batches = [order[i * per_rank:(i + 1) * per_rank] for i in range(steps_per_epoch)]
        mean_loss, step = _run_epoch(net, opt, sched, recipe, batches, x, y, gen, step)
        if rank == 0:
            acc = evaluate(model, hx, hy)
            history.append({"epoch": epoch + 1, "loss": round(mean_loss, 5), "heldout_acc": acc})
            log(f"[{name} {recipe.loss} seed={recipe.seed}] epoch {epoch + 1}/{recipe.epochs} "
                f"loss {mean_loss:.4f} held-out acc {acc:.4f} ({time.time() - t0:.0f}s)")
        if recipe.max_steps is not None and step >= recipe.max_steps:
            break
    result = {"model": name, "recipe": asdict(recipe), "world_size": world, "steps": step,
              "train_seconds": round(time.time() - t0, 1), "history": history,
              "heldout_acc": history[-1]["heldout_acc"] if history else None}
    if rank == 0 and out is not None:
        save_weights(model, out)
        log(f"wrote {out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--loss", choices=("bias", "ce"), default="bias")
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--steps", type=int, default=None, help="cap on optimiser steps (tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    p.add_argument("--threads", type=int, default=Recipe.threads)
    p.add_argument("--out", type=Path, default=None, help="weights path (.safetensors)")
    p.add_argument("--result-json", type=Path, default=None, help="write run results here")
    p.add_argument("--card", action="store_true", help="train both losses, write the card")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.card:
        from models.card import main as card_main

        return card_main([args.model, "--epochs", str(args.epochs)])
    recipe = Recipe(loss=args.loss, epochs=args.epochs, batch_size=args.batch_size,
                    seed=args.seed, threads=args.threads, max_steps=args.steps)
    result = train(args.model, recipe, args.out)
    if args.result_json is not None and int(os.environ.get("RANK", "0")) == 0:
        args.result_json.parent.mkdir(parents=True, exist_ok=True)
        args.result_json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
