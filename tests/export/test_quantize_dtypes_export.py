"""LiteRT int8-static builds and runs models whose float maths takes integer operands
(the PT2E side is tests/unit/test_quantize_dtypes.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tools.integer_operand_models import EXPORTED, SHAPE, calibration


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("model_cls", EXPORTED, ids=[m.__name__ for m in EXPORTED])
def test_litert_int8_static_builds_and_runs_a_model_with_integer_operands(model_cls, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from sdk_builder.formats import ExportJob
    from sdk_builder.formats.litert import export

    model = model_cls().eval()
    job = ExportJob(module=model, examples=(torch.zeros(SHAPE),), recipe="int8-static",
                    out_path=tmp_path / "m.tflite", calibration=calibration)
    result = export(job)
    interpreter = Interpreter(model_path=str(result.path))
    interpreter.allocate_tensors()
    x = torch.randn(SHAPE)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy())
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = model(x).detach().numpy()
    assert float(np.abs(want - got).max()) < 0.05 * float(np.abs(want).max())
