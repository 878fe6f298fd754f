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


def _checked_factory(factory, path: Path, notes: list[str]):
    """The factory, wrapped so the model it returns is an nn.Module, on the CPU, in eval
    mode; what was corrected goes into `notes` (once)."""
    import torch

    def build():
        module = factory()
        if not isinstance(module, torch.nn.Module):
            raise UsageError(f"{path.name}:{factory.__name__}() returned {type(module).__name__}, "
                             "not a torch.nn.Module")
        devices = {p.device.type for p in [*module.parameters(), *module.buffers()]}
        if "meta" in devices:
            raise PocketError(f"{path.name}:{factory.__name__}() returned a model on the 'meta' "
                              "device (no weights); build it on the CPU or load its weights")
        if devices - {"cpu"}:
            _note(notes, f"the model was on {', '.join(sorted(devices - {'cpu'}))}: Pocket exports "
                         "on the CPU and moved it there")
            module = module.cpu()
        if module.training:
            _note(notes, f"{factory.__name__}() returned the model in training mode: it is built "
                         "in eval mode (BatchNorm running statistics, dropout off); call "
                         "model.eval() in the factory to silence this")
        return module.eval()
    build.__name__ = factory.__name__
    return build


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


def _output_specs(module, shape: tuple[int, ...], names: tuple[str, ...] | None) -> tuple[OutputSpec, ...]:
    import torch

    try:
        with torch.no_grad():
            out = module(torch.zeros(shape))
    except Exception as exc:
        raise PocketError(f"the model does not run on an input of shape {list(shape)}: "
                          f"{type(exc).__name__}: {exc}") from None
    outs = out if isinstance(out, (tuple, list)) else [out]
    if not all(isinstance(o, torch.Tensor) for o in outs):
        kinds = ", ".join(type(o).__name__ for o in outs)
        raise UsageError(f"the model returns {kinds}: Pocket exports models whose forward returns "
                         "a tensor or a tuple of tensors (return dict values as a tuple)")
    if names is not None and len(names) != len(outs):
        raise UsageError(f"--output-names gives {len(names)} name(s) for the model's "
                         f"{len(outs)} output(s)")
    names = names or tuple(f"output{i}" for i in range(len(outs)))
    return tuple(OutputSpec(n, tuple(o.shape), "model output") for n, o in zip(names, outs))


def spec_from_file(ref: str, input_shape: tuple[int, ...], task: str = "raw",
                   labels_file: Path | None = None, mean: tuple[float, ...] | None = None,
                   std: tuple[float, ...] | None = None,
                   output_names: tuple[str, ...] | None = None) -> ModelSpec:
    """A ModelSpec for `path.py:factory`, whose factory returns an nn.Module. The spec's
    `notes` say what Pocket corrected about the returned model (training mode, device)."""
    task_row = get_task(task)
    if len(input_shape) != 4 or min(input_shape) < 1:
        raise UsageError(f"--input-shape takes N,C,H,W with positive sizes, got {list(input_shape)}")
    if output_names is not None and (len(set(output_names)) != len(output_names) or
                                     not all(n.isidentifier() for n in output_names)):
        raise UsageError(f"--output-names takes distinct identifiers, got {', '.join(output_names)}")
    path, factory = _load_factory(ref)
    notes: list[str] = []
    build = _checked_factory(factory, path, notes)
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
    outputs = _output_specs(build(), input_spec.shape, output_names)
    postprocess = task_row.default_postprocess()
    spec = ModelSpec(build=build, task=task, input=input_spec, outputs=outputs,
                     postprocess=postprocess, labels=labels, notes=tuple(notes),
                     description=f"user model {path.name}:{factory.__name__}")
    object.__setattr__(spec, "name", path.stem)
    return spec
