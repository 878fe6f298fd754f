"""The bring-your-own-model corpus (tests/fixtures/user_models/corpus/) is well-formed test data.

Every corpus file is discovered by globbing, imported by path and checked: metadata constants,
a deterministic build(), finite non-constant outputs of the declared kind, a small parameter
count, and a clean torch.export.export. The converter itself is not exercised here.
"""
from __future__ import annotations

import importlib.util
import inspect
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn


CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "user_models" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*.py") if not p.name.startswith("_"))
TASKS = {"classification", "segmentation", "raw"}
MAX_PARAMS = 400_000
MAX_SIDE = 96


@cache
def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"user_corpus_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(module: ModuleType) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1234)
    return tuple(torch.rand(shape, generator=gen) for shape in module.INPUT_SHAPES)


def _outputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    with torch.no_grad():
        out = model(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    assert outs and all(isinstance(o, torch.Tensor) for o in outs), type(out)
    return outs


def _built(module: ModuleType) -> nn.Module:
    model = module.build()
    assert isinstance(model, nn.Module), type(model)
    return model.eval()  # what a converter does first; some factories (like users) forget it


def test_corpus_is_big_and_varied():
    assert len(FILES) >= 20, [p.name for p in FILES]
    families = [_load(p).FAMILY for p in FILES]
    assert len(set(families)) >= 20, families
    assert len(set(families)) == len(families), "two corpus files claim the same FAMILY"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_metadata_is_well_formed(path):
    module = _load(path)
    doc = (module.__doc__ or "").strip()
    assert doc and "\n" not in doc, "needs a one-line module docstring"
    assert isinstance(module.FAMILY, str) and module.FAMILY.strip()
    assert module.TASK in TASKS, module.TASK
    assert callable(getattr(module, "build", None))
    shapes = module.INPUT_SHAPES
    assert isinstance(shapes, list) and shapes
    for shape in shapes:
        assert isinstance(shape, tuple) and len(shape) == 4, shape
        assert all(isinstance(d, int) and d > 0 for d in shape), shape
        assert shape[0] == 1 and max(shape[2:]) <= MAX_SIDE, shape
    if len(shapes) > 1:
        assert module.TASK == "raw", "multi-input models are TASK='raw'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_build_is_deterministic_small_and_not_degenerate(path):
    module = _load(path)
    first, second = _built(module), _built(module)
    forward_args = inspect.signature(first.forward).parameters
    assert len(forward_args) == len(module.INPUT_SHAPES), "one INPUT_SHAPES entry per forward argument"
    params = sum(p.numel() for p in first.parameters())
    assert 0 < params < MAX_PARAMS, params

    inputs = _inputs(module)
    outs_a, outs_b = _outputs(first, inputs), _outputs(second, inputs)
    assert len(outs_a) == len(outs_b)
    for a, b in zip(outs_a, outs_b):
        assert torch.equal(a, b), "build() is not deterministic"
        assert torch.isfinite(a).all(), "non-finite outputs"
        assert a.numel() > 1 and a.float().std() > 1e-3, "constant output"

    n, _, h, w = module.INPUT_SHAPES[0]
    if module.TASK == "classification":
        assert len(outs_a) == 1 and outs_a[0].shape[0] == n and outs_a[0].dim() == 2, [o.shape for o in outs_a]
        assert outs_a[0].shape[1] > 1
    elif module.TASK == "segmentation":
        assert len(outs_a) == 1 and outs_a[0].dim() == 4, [o.shape for o in outs_a]
        assert outs_a[0].shape[0] == n and tuple(outs_a[0].shape[2:]) == (h, w), outs_a[0].shape


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_torch_export_succeeds(path):
    module = _load(path)
    model = _built(module)
    inputs = _inputs(module)
    program = torch.export.export(model, inputs)
    eager = _outputs(model, inputs)
    exported = _outputs(program.module(), inputs)
    assert len(exported) == len(eager)
    for e, x in zip(eager, exported):
        torch.testing.assert_close(x, e, rtol=1e-4, atol=1e-5)
