"""Bring your own model: a user's `file.py:factory` becomes a ModelSpec, the same door the zoo uses."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from models.spec import InputSpec, ModelSpec, OutputSpec
from models.tasks import get_task
from runtime_py.errors import PocketError, UsageError


def _load_factory(ref: str):
    path_text, sep, factory_name = ref.rpartition(":")
    if not sep or not path_text or not factory_name:
        raise UsageError(f"--model-file takes path/to/file.py:factory, got '{ref}'")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist")
    module_name = f"pocket_user_model_{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise UsageError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        raise PocketError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
        raise UsageError(f"{path} has no callable '{factory_name}'; it defines: {', '.join(names)}")
    return path, factory


def _output_specs(module, shape: tuple[int, ...]) -> tuple[OutputSpec, ...]:
    import torch

    try:
        with torch.no_grad():
            out = module.eval()(torch.zeros(shape))
    except Exception as exc:
        raise PocketError(f"the model does not run on an input of shape {list(shape)}: "
                          f"{type(exc).__name__}: {exc}") from None
    outs = out if isinstance(out, (tuple, list)) else [out]
    return tuple(OutputSpec(f"output{i}", tuple(o.shape), "model output") for i, o in enumerate(outs))


def spec_from_file(ref: str, input_shape: tuple[int, ...], task: str = "raw",
                   labels_file: Path | None = None, mean: tuple[float, ...] | None = None,
                   std: tuple[float, ...] | None = None) -> ModelSpec:
    """A ModelSpec for `path.py:factory`, whose factory returns an nn.Module."""
    task_row = get_task(task)
    if len(input_shape) != 4 or min(input_shape) < 1:
        raise UsageError(f"--input-shape takes N,C,H,W with positive sizes, got {list(input_shape)}")
    path, factory = _load_factory(ref)
    channels = input_shape[1]
    mean = tuple(mean) if mean else (0.0,) * channels
    std = tuple(std) if std else (1.0,) * channels
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise UsageError(f"--mean and --std need {channels} values each (std > 0)")
    labels = None
    if labels_file is not None:
        labels = [line.strip() for line in Path(labels_file).read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    input_spec = InputSpec(shape=tuple(input_shape), color="GRAY" if channels == 1 else "RGB",
                           mean=mean, std=std)
    outputs = _output_specs(factory(), input_spec.shape)
    postprocess = task_row.default_postprocess()
    spec = ModelSpec(build=factory, task=task, input=input_spec, outputs=outputs,
                     postprocess=postprocess, labels=labels,
                     description=f"user model {path.name}:{factory.__name__}")
    object.__setattr__(spec, "name", path.stem)
    return spec
