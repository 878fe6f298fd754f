"""PT2E quantization puts no observer on a tensor that is not floating point (int64
constants a quantizer makes of `x * 2`, index arithmetic feeding float maths), and an
observer that fails anyway is diagnosed with the graph node and the user's line."""
from __future__ import annotations

import pytest
import torch

from sdk_builder.quantize import pt2e as quantize
from sdk_builder.diagnose import export_failure, running_node
from sdk_builder.quantize.pt2e import drop_integer_annotations, pt2e_quantize
from tests.tools.integer_operand_models import (MODELS, SHAPE, ScalarMaths, calibration,
                                               litert_quantizer)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


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


@pytest.mark.parametrize("model_cls", MODELS, ids=[m.__name__ for m in MODELS])
def test_the_litert_quantizer_calibrates_a_model_with_integer_operands(model_cls):
    model = model_cls().eval()
    quantized, samples = pt2e_quantize(model, (torch.zeros(SHAPE),), litert_quantizer(),
                                       calibration(), fold_quantize=False)
    assert samples == 16
    x = torch.randn(SHAPE)
    with torch.no_grad():
        want, got = model(x), quantized(x)
    assert float((want - got).abs().max()) < 0.05 * float(want.abs().max())


@pytest.mark.parametrize("model_cls", MODELS, ids=[m.__name__ for m in MODELS])
def test_only_the_specs_on_integer_values_are_dropped(model_cls):
    quantizer = litert_quantizer()
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


def test_an_observer_on_an_integer_tensor_is_diagnosed_with_the_users_line(monkeypatch):
    monkeypatch.setattr(quantize, "float_only", lambda quantizer: quantizer)   # as before
    with pytest.raises(NotImplementedError, match="Long") as failure:
        pt2e_quantize(ScalarMaths().eval(), (torch.zeros(SHAPE),), litert_quantizer(),
                      calibration(), fold_quantize=False)
    text = export_failure(failure.value, None)
    assert "op aten::mul" in text and "calibration observer on its operand int64" in text
    assert "integer_operand_models.py" in text and "sigmoid() * 2 - 0.5) * 8" in text
    assert "make it float" in text


def test_an_error_outside_a_running_graph_names_no_node():
    try:
        raise RuntimeError("\"histogram_cpu\" not implemented for 'Long'")
    except RuntimeError as exc:
        assert running_node(exc) is None
        assert "op " not in export_failure(exc, None)
