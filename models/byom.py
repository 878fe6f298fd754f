"""Bring your own model: a user's `file.py:factory` becomes a ModelSpec, the same door the zoo uses."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from models.spec import InputSpec, ModelSpec, OutputSpec, TensorInputSpec
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


def _forward_parameters(module) -> list:
    """forward's positional parameters (inspect.Parameter), the tensors it takes in order;
    [] when the signature cannot be read (*args gives none either)."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]


def _extra_inputs(module, shapes: list[tuple[int, ...]]) -> tuple[TensorInputSpec, ...]:
    """The inputs after the image, named after forward's arguments; refuses a count forward
    cannot take."""
    params = _forward_parameters(module)
    named = [p for p in params if p.kind is not p.VAR_POSITIONAL]
    args = [p.name for p in named]
    required = sum(p.default is p.empty for p in named)
    takes_varargs = len(named) < len(params)
    if args and (len(shapes) < required or (len(shapes) > len(args) and not takes_varargs)):
        raise UsageError(f"{len(shapes)} --input-shape given, but forward({', '.join(args)}) "
                         f"takes {required if required == len(args) else f'{required} to {len(args)}'} "
                         "tensor(s): give one --input-shape per argument, in order")
    names = [*args, *(f"input{i}" for i in range(len(args), len(shapes)))]
    names = [n if n != "input" or i == 0 else f"input{i}" for i, n in enumerate(names)]  # "input" is the image's
    return tuple(TensorInputSpec(names[i], tuple(shape)) for i, shape in enumerate(shapes) if i > 0)


def _output_specs(module, shapes: list[tuple[int, ...]],
                  names: tuple[str, ...] | None) -> tuple[OutputSpec, ...]:
    import torch

    try:
        with torch.no_grad():
            out = module(*(torch.zeros(s) for s in shapes))
    except Exception as exc:
        given = " and ".join(str(list(s)) for s in shapes)
        raise PocketError(f"the model does not run on input(s) of shape {given}: "
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


def spec_from_file(ref: str, input_shapes: list[tuple[int, ...]], task: str = "raw",
                   labels_file: Path | None = None, mean: tuple[float, ...] | None = None,
                   std: tuple[float, ...] | None = None,
                   output_names: tuple[str, ...] | None = None) -> ModelSpec:
    """A ModelSpec for `path.py:factory`, whose factory returns an nn.Module. `input_shapes`
    has one shape per forward argument: the first is the image (N,C,H,W, preprocessed as
    the manifest says), the others are tensors passed as they are. The spec's `notes` say
    what Pocket corrected about the returned model (training mode, device)."""
    get_task(task)            # refuses an unknown task with a suggestion
    input_shapes = [tuple(s) for s in input_shapes]
    if not input_shapes:
        raise UsageError("--model-file needs --input-shape N,C,H,W")
    input_shape = input_shapes[0]
    if len(input_shape) != 4 or min(input_shape) < 1:
        raise UsageError(f"the first --input-shape (the image) takes N,C,H,W with positive sizes, "
                         f"got {list(input_shape)}")
    for shape in input_shapes[1:]:
        if not shape or min(shape) < 1 or shape[0] != input_shape[0]:
            raise UsageError(f"--input-shape {list(shape)}: every input needs positive sizes and "
                             f"the image's batch size {input_shape[0]} first")
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
    module = build()
    extra = _extra_inputs(module, input_shapes)
    outputs = _output_specs(module, input_shapes, output_names)
    spec = ModelSpec(build=build, task=task, input=input_spec, outputs=outputs, extra_inputs=extra,
                     labels=labels, notes=tuple(notes),
                     description=f"user model {path.name}:{factory.__name__}")
    object.__setattr__(spec, "name", path.stem)
    return spec
