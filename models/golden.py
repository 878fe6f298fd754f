"""Regenerate a zoo model's golden fixture: eager outputs of the committed weights.

    python -m models.golden skipnet_m [--n 8] [--out tests/fixtures/golden/skipnet_m.npz]

The fixture holds the first `n` held-out inputs, their targets and the eager logits.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from models.registry import get

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "golden"


def make_golden(name: str, n: int = 8) -> dict[str, np.ndarray]:
    """Inputs, targets and logits of the committed weights on the first `n` held-out images."""
    spec = get(name)
    ev = spec.evaluation()
    model = spec.load()
    inputs = ev.inputs[:n].contiguous()
    with torch.no_grad():
        logits = model(inputs)
    return {"inputs": inputs.numpy().astype(np.float32),
            "targets": ev.targets[:n].numpy().astype(np.int64),
            "logits": logits.numpy().astype(np.float32)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.golden", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out = args.out or FIXTURES / f"{args.model}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **make_golden(args.model, args.n))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
