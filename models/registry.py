"""The model registry: one `@register` per zoo model (in models/zoo/), nothing else lists
models. The records a model registers are defined in models.spec."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Iterator

from models.spec import ModelSpec
from runtime_py.errors import UsageError, did_you_mean


class RegistryError(UsageError):
    """An unknown or duplicate model name."""


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
    """Import every module of the models.zoo package so their registrations run."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    from models import zoo

    for info in pkgutil.iter_modules(zoo.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{zoo.__name__}.{info.name}")


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
