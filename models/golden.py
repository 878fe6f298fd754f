"""Regenerate a zoo model's golden fixture: eager outputs of the committed weights.

    python -m models.golden NAME [--n N] [--out tests/fixtures/golden/NAME.npz]

The fixture holds the first `n` held-out inputs (default: the spec's golden_cases), their
targets and every eager output (`out0`, `out1`, ...).
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


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.npz"


def eager_outputs(model, inputs: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(inputs)
    return [o.numpy().astype(np.float32) for o in (out if isinstance(out, (tuple, list)) else [out])]


def make_golden(name: str, n: int | None = None) -> dict[str, np.ndarray]:
    """Inputs, targets and outputs of the committed weights on the first `n` held-out samples."""
    spec = get(name)
    ev = spec.evaluation()
    n = n or spec.golden_cases
    inputs = ev.inputs[:n].contiguous()
    outputs = eager_outputs(spec.load(), inputs)
    return {"inputs": inputs.numpy().astype(np.float32),
            "targets": np.asarray(ev.targets[:n].numpy()),
            **{f"out{i}": o for i, o in enumerate(outputs)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.golden", description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    out = args.out or fixture_path(args.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **make_golden(args.model, args.n))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
