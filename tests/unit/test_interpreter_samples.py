"""Interpreter.run_samples gives exactly what one run per sample gives: samples run
together only where that is bit-identical, and a program that mixes or pins the batch
runs them one by one."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from runtime_py.runtimes.coreml.interpreter import Interpreter


def _package(module, shape, path: Path) -> Path:
    import torch

    from sdk_builder.formats.coreml import convert_fp16

    convert_fp16(module.eval(), (torch.zeros(shape),)).save(str(path))
    return path


def _classifier():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            y = torch.relu(self.dw(torch.relu(self.conv(x))))
            return self.fc(y.mean((2, 3), keepdim=True).view(1, -1))   # the batch pinned to 1

    torch.manual_seed(0)
    return Net()


def _batch_mixer():
    from torch import nn

    class Mixer(nn.Module):
        def forward(self, x):
            return x * x.sum(dim=0, keepdim=True)     # a sum over the batch axis

    return Mixer()


def _samples_as_one_by_one(program: Interpreter, x: np.ndarray) -> list[np.ndarray]:
    """run_samples' outputs, asserted bit-identical to one run per sample."""
    got = program.run_samples([x])
    runs = [program.run([x[i:i + 1]]) for i in range(len(x))]
    want = [np.concatenate(parts) for parts in zip(*runs)]
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    return got


def test_a_classifier_runs_its_samples_together_bit_identically(tmp_path):
    program = Interpreter(_package(_classifier(), (1, 3, 16, 16), tmp_path / "net.mlpackage"))
    x = np.random.default_rng(0).normal(size=(150, 3, 16, 16)).astype(np.float32)
    assert _samples_as_one_by_one(program, x)[0].shape == (150, 5)
    assert True in program._together.values()           # the chunks did run together


def test_a_program_that_mixes_samples_runs_them_one_by_one(tmp_path):
    program = Interpreter(_package(_batch_mixer(), (1, 3, 4, 4), tmp_path / "mix.mlpackage"))
    x = np.random.default_rng(1).normal(size=(20, 3, 4, 4)).astype(np.float32)
    _samples_as_one_by_one(program, x)
    assert program._together and not any(program._together.values())
