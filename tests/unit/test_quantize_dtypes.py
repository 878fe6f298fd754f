"""PT2E quantization puts no observer on a tensor that is not floating point (int64
constants a quantizer makes of `x * 2`, index arithmetic feeding float maths), and an
observer that fails anyway is diagnosed with the graph node and the user's line."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sdk_builder.quantize import pt2e as quantize
from sdk_builder.diagnose import export_failure, running_node
from sdk_builder.quantize.pt2e import drop_integer_annotations, pt2e_quantize

SHAPE = (1, 3, 8, 8)


class ScalarMaths(nn.Module):
    """A YOLO-style decode: Python int operands of float maths (litert-torch's quantizer
    turns them into int64 constants before annotating)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv(x).sigmoid() * 2 - 0.5) * 8


class GridScaled(nn.Module):
    """int64 arithmetic on a torch.arange grid feeds a float mul (the graph is quantized
    as captured: no canonical pass folds the grid first)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = torch.arange(x.shape[-1]) * 2 + 1
        return self.conv(x).sigmoid() * columns


class IndexScaled(nn.Module):
    """An int64 arithmetic node computed from the input feeds a float mul (an argmax near a
    tie may flip once x is int8, so only the PyTorch twin is compared)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x.argmax(dim=1, keepdim=True) + 1
        return self.conv(x).sigmoid() * index


MODELS = [ScalarMaths, GridScaled, IndexScaled]
EXPORTED = [ScalarMaths, GridScaled]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


def _litert_quantizer():
    from litert_torch.quantize.pt2e_quantizer import (PT2EQuantizer,
                                                      get_symmetric_quantization_config)

    return PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def _calibration() -> list[torch.Tensor]:
    return [torch.randn(8, *SHAPE[1:]) for _ in range(2)]


def _integer_specs(gm) -> list[str]:
    """Names of non-floating values that carry a quantization spec."""
    names = []
    for node in gm.graph.nodes:
        annotation = node.meta.get("quantization_annotation")
        if annotation is None:
            continue
        names += [s.name for s in annotation.input_qspec_map if quantize._is_not_float(gm, s)]
        if annotation.output_qspec is not None and quantize._is_not_float(gm, node):
            names.append(node.name)
    return names


@pytest.mark.unit
@pytest.mark.parametrize("model_cls", MODELS, ids=[m.__name__ for m in MODELS])
def test_the_litert_quantizer_calibrates_a_model_with_integer_operands(model_cls):
    model = model_cls().eval()
    quantized, samples = pt2e_quantize(model, (torch.zeros(SHAPE),), _litert_quantizer(),
                                       _calibration(), fold_quantize=False)
    assert samples == 16
    x = torch.randn(SHAPE)
    with torch.no_grad():
        want, got = model(x), quantized(x)
    assert float((want - got).abs().max()) < 0.05 * float(want.abs().max())


@pytest.mark.unit
@pytest.mark.parametrize("model_cls", MODELS, ids=[m.__name__ for m in MODELS])
def test_only_the_specs_on_integer_values_are_dropped(model_cls):
    quantizer = _litert_quantizer()
    gm = torch.export.export(model_cls().eval(), (torch.zeros(SHAPE),)).module()
    gm = quantizer.transform_for_annotation(gm)
    quantizer.annotate(gm)
    assert _integer_specs(gm), "the quantizer no longer annotates integers: test is moot"
    conv = next(n for n in gm.graph.nodes if n.target == torch.ops.aten.conv2d.default)
    before = dict(conv.meta["quantization_annotation"].input_qspec_map)
    assert drop_integer_annotations(gm) >= 1
    assert _integer_specs(gm) == []
    assert conv.meta["quantization_annotation"].input_qspec_map == before
    assert drop_integer_annotations(gm) == 0


@pytest.mark.unit
def test_an_observer_on_an_integer_tensor_is_diagnosed_with_the_users_line(monkeypatch):
    monkeypatch.setattr(quantize, "float_only", lambda quantizer: quantizer)   # as before
    with pytest.raises(NotImplementedError, match="Long") as failure:
        pt2e_quantize(ScalarMaths().eval(), (torch.zeros(SHAPE),), _litert_quantizer(),
                      _calibration(), fold_quantize=False)
    text = export_failure(failure.value, None)
    assert "op aten::mul" in text and "calibration observer on its operand int64" in text
    assert "test_quantize_dtypes.py" in text and "sigmoid() * 2 - 0.5) * 8" in text
    assert "make it float" in text


@pytest.mark.unit
def test_an_error_outside_a_running_graph_names_no_node():
    try:
        raise RuntimeError("\"histogram_cpu\" not implemented for 'Long'")
    except RuntimeError as exc:
        assert running_node(exc) is None
        assert "op " not in export_failure(exc, None)


@pytest.mark.export
@pytest.mark.parametrize("model_cls", EXPORTED, ids=[m.__name__ for m in EXPORTED])
def test_litert_int8_static_builds_and_runs_a_model_with_integer_operands(model_cls, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from sdk_builder.formats import ExportJob
    from sdk_builder.formats.litert import export

    model = model_cls().eval()
    job = ExportJob(module=model, examples=(torch.zeros(SHAPE),), recipe="int8-static",
                    out_path=tmp_path / "m.tflite", calibration=_calibration)
    result = export(job)
    interpreter = Interpreter(model_path=str(result.path))
    interpreter.allocate_tensors()
    x = torch.randn(SHAPE)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = model(x).detach().numpy()
    assert float(np.abs(want - got).max()) < 0.05 * float(np.abs(want).max())
