"""Helpers shared by the MIL kernel tests: call a kernel, wrap arrays for torch, draw data."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from runtime_py.runtimes.coreml.ops import KERNELS


def one(op: str, **inputs) -> np.ndarray:
    """The single output of kernel `op` on `inputs` (no attributes)."""
    out = KERNELS[op](inputs, {})
    assert len(out) == 1
    return out[0]


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def normal_draws(seed: int) -> Callable[..., np.ndarray]:
    """rand(*shape): seeded standard-normal float32 arrays, one stream per test module."""
    rng = np.random.default_rng(seed)
    return lambda *shape: rng.normal(size=shape).astype(np.float32)
