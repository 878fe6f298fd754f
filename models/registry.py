"""The model registry: one `@register` per zoo model, nothing else lists models."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from runtime_py.errors import UsageError, did_you_mean

WEIGHTS_DIR = Path(__file__).parent / "weights"


class RegistryError(UsageError):
    """An unknown or duplicate model name."""


@dataclass(frozen=True)
class InputSpec:
    """How the model wants its input tensor; copied verbatim into the manifest."""

    shape: tuple[int, ...]
    layout: str = "NCHW"
    color: str = "RGB"
    range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    dtype: str = "float32"
    normalize_in_graph: bool = False


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: tuple[int, ...]
    meaning: str


@dataclass(frozen=True)
class EvalData:
    """A held-out split: inputs already preprocessed as the manifest says."""

    inputs: Any          # torch.Tensor [N, *input.shape[1:]]
    targets: Any         # torch.Tensor [N]
    metric: str          # e.g. "top1_accuracy"
    description: str = ""


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[[], Any]
    task: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    postprocess: dict
    weights: str | None = None
    labels: list[str] | None = None
    calibration: Callable[[int], Iterable[Any]] | None = None
    evaluation: Callable[[], EvalData] | None = None
    description: str = ""
    name: str = field(default="", compare=False)

    def weights_path(self) -> Path | None:
        return WEIGHTS_DIR / self.weights if self.weights else None

    def load(self, weights: str | Path | None = None):
        """Build the module in eval mode with its weights (the committed ones by default)."""
        from models.weights_io import load_weights

        module = self.build()
        path = Path(weights) if weights else self.weights_path()
        if path is not None:
            load_weights(module, path)
        return module.eval()


_REGISTRY: dict[str, Callable[[], ModelSpec]] = {}
_DISCOVERED = False


def register(name: str) -> Callable[[Callable[[], ModelSpec]], Callable[[], ModelSpec]]:
    """Register a zero-argument factory returning the model's ModelSpec."""

    def deco(factory: Callable[[], ModelSpec]) -> Callable[[], ModelSpec]:
        if name in _REGISTRY:
            raise RegistryError(f"model '{name}' is registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def _discover() -> None:
    """Import every module in the models package so their registrations run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    import models

    skip = {"registry", "train", "weights_io", "layers", "bias_loss", "data", "card",
            "card_md", "golden", "byom"}
    for info in pkgutil.iter_modules(models.__path__):
        if info.name not in skip and not info.name.startswith("_"):
            importlib.import_module(f"models.{info.name}")


def names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    _discover()
    if name not in _REGISTRY:
        raise RegistryError(
            f"unknown model '{name}'{did_you_mean(name, _REGISTRY)}; `pocket list` shows the zoo"
        )
    spec = _REGISTRY[name]()
    object.__setattr__(spec, "name", name)
    return spec


def items() -> Iterator[tuple[str, ModelSpec]]:
    for n in names():
        yield n, get(n)
