"""The Core ML interpreter runs real zoo ML programs on Linux: fp16 programs agree with
PyTorch fp32 at fp16 level, a router kept in fp32 routes exactly as PyTorch does, an op
outside coverage is refused at load with its name, and nothing imports coremltools."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from models.registry import get
from runtime_py.errors import UnsupportedError
from sdk_builder.formats import ExportJob, get_format
from sdk_builder.quantize.parity import parity


def _package(name: str, recipe: str, tmp_path_factory):
    torch.set_num_threads(1)
    spec = get(name)
    out = tmp_path_factory.mktemp(name) / f"{name}.{recipe}.mlpackage"
    job = ExportJob(spec.load(), (torch.zeros(spec.input.shape),), recipe, out,
                    keep_float=tuple(spec.keep_float))
    get_format("coreml").export(job)
    return spec, out


@pytest.fixture(scope="module")
def skipnet(tmp_path_factory):
    return _package("skipnet_m", "fp16", tmp_path_factory)


@pytest.fixture(scope="module")
def epe(tmp_path_factory):
    return _package("epe_edanet", "fp16", tmp_path_factory)


def test_skipnet_fp16_program_agrees_with_pytorch(skipnet):
    from runtime_py.runtimes.coreml.interpreter import Interpreter

    spec, path = skipnet
    program = Interpreter(path)
    model = spec.load()
    inputs = spec.evaluation().inputs[:8]
    with torch.no_grad():
        want = model(inputs).numpy()
    got = np.concatenate([program.run([inputs[i:i + 1].numpy()])[0] for i in range(len(inputs))])
    assert (got.argmax(1) == want.argmax(1)).all()
    assert parity(want, got)["snr_db"] > 30.0        # fp16 rounding after every op, ~40 dB here


def test_a_router_kept_in_fp32_routes_exactly_as_pytorch(epe):
    from runtime_py.runtimes.coreml.interpreter import Interpreter

    spec, path = epe
    program = Interpreter(path)
    model = spec.load()
    inputs = spec.evaluation().inputs[:3]
    for i in range(len(inputs)):
        x = inputs[i:i + 1]
        with torch.no_grad():
            logits, routes = (t.numpy() for t in model(x))
        got_logits, got_routes = program.run([x.numpy()])
        np.testing.assert_array_equal(got_routes, routes)
        assert np.mean(got_logits.argmax(1) == logits.argmax(1)) > 0.99


def test_an_op_outside_coverage_is_refused_at_load_with_its_name(skipnet, monkeypatch):
    from runtime_py.runtimes.coreml import ops as mil_ops
    from runtime_py.runtimes.coreml.interpreter import Interpreter

    _, path = skipnet
    monkeypatch.delitem(mil_ops.KERNELS, "sigmoid_hard")
    with pytest.raises(UnsupportedError) as err:
        Interpreter(path)
    text = str(err.value)
    assert "sigmoid_hard" in text and path.name in text and "\n" not in text


def test_the_interpreter_imports_neither_coremltools_nor_torch():
    code = ("import sys, runtime_py.runtimes.coreml.interpreter, runtime_py.runtimes.coreml.ops; "
            "print(any(m.split('.')[0] in ('coremltools', 'torch') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-500:]


def test_a_build_keeps_a_core_ml_artifact_the_interpreter_cannot_run(skipnet, monkeypatch, tmp_path):
    """An op outside coverage is no reason to drop a valid .mlpackage: the build falls back
    to the structural check and the PyTorch estimate, and says why."""
    import shutil

    from runtime_py.runtimes.coreml import ops as mil_ops
    from sdk_builder.build import _base_manifest, BuildRequest
    from sdk_builder.verify import torch_reference, verify_artifact

    spec, path = skipnet
    module = spec.load()
    stage = tmp_path / "stage"
    shutil.copytree(path, stage / path.name)
    manifest = _base_manifest(BuildRequest(spec, "ios"), module, None, "none")
    entry = {"file": path.name, "format": "coreml", "runtime": "coreml", "delegate": None,
             "recipe": "fp16", "recipe_details": {}, "golden_outputs": []}
    evaluation = spec.evaluation()
    ref = torch_reference(module, [(evaluation.inputs[:1].numpy(),)], evaluation, spec.task_row)
    monkeypatch.delitem(mil_ops.KERNELS, "sigmoid_hard")
    verify_artifact(stage, manifest, entry, ref, module)
    ver = entry["verification"]
    assert ver["status"] == "structure-only" and "sigmoid_hard" in ver["reason"]
    assert ver["evaluation"]["estimated"] is True
