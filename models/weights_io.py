"""Load and save module weights: safetensors (preferred) or `.pt` state dicts (safe load).

`.pt` files are read with `torch.load(weights_only=True)`, which refuses pickles that would
run code. Every failure is a PocketError with a one-line message.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from runtime_py.errors import PocketError


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PocketError(f"weights file not found: {path}; train it or pass an existing path")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises several error types
            raise PocketError(f"cannot read safetensors file {path}: {exc}") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own text suggests weights_only=False: never repeat that advice; keep its reason.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = next((ln for ln in lines if ln.startswith(("Unsupported", "Trying to load"))),
                      lines[0] if lines and not lines[0].startswith("Weights only") else type(exc).__name__)
        raise PocketError(f"refused to load {path.name}: not a plain tensor state dict, and "
                          f"unpickling it could run code ({reason[:120]}); save the weights with "
                          "safetensors or torch.save(model.state_dict())") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PocketError(f"{path} does not hold a flat state dict of tensors")
    return state


def load_weights(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict from `path` into `module` after checking every key and shape."""
    path = Path(path)
    state = _read(path)
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise PocketError(f"{path.name}: missing key '{missing[0]}' "
                          f"({len(missing)} missing); weights do not match this model")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise PocketError(f"{path.name}: unexpected key '{unexpected[0]}' "
                          f"({len(unexpected)} unexpected); weights do not match this model")
    for key, ref in expected.items():
        if tuple(state[key].shape) != tuple(ref.shape):
            raise PocketError(f"{path.name}: key '{key}' has shape {tuple(state[key].shape)}, "
                              f"model expects {tuple(ref.shape)}")
    module.load_state_dict(state, strict=True)
    return module


def save_weights(module: nn.Module, path: str | Path) -> Path:
    """Write `module`'s state dict to `path` (.safetensors or .pt), atomically.

    The safetensors header carries only {"format": "pt"}: safetensors writes metadata keys
    in hash order, so more keys would make the bytes (and the sha256) vary run to run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)   # mkstemp makes 0600; weights are meant to be shared/packaged
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, tmp, metadata={"format": "pt"})
        else:
            torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
