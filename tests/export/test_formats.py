"""Every format x recipe exported from a small CNN and checked in the real runtimes.

One module-scoped build exports all artifacts once (~1 min on 2 cores); each test then
asserts one property of them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.export

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from runtime_py.errors import PocketError, UnsupportedError  # noqa: E402
from sdk_builder.formats import FORMATS, ExportJob, get_format  # noqa: E402
from sdk_builder.quantize import snr_db  # noqa: E402

FP32_TOL = 1e-4
# int8 floor: one int8 quantizer alone gives ~40-50 dB on well-spread activations; across
# this net's ~8 quantized layers we measure 40-46 dB (XNNPACK, LiteRT). A broken recipe
# (wrong scales, lost calibration, uint8/int8 mix-up, float I/O read as int8) lands below
# 10 dB, so 25 dB (RMS error ~5.6 % of the signal) fails those and still leaves ~15 dB
# of margin for calibration noise.
INT8_SNR_FLOOR_DB = 25.0
CALIB_BATCHES, CALIB_BATCH = 4, 8
ON_APPLE = sys.platform == "darwin"


class _SE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))
        return x * F.hardsigmoid(self.fc2(s))


class TinyNet(nn.Module):
    """conv-bn-hardswish, depthwise, squeeze-excite, residual add, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False),
                                nn.BatchNorm2d(16), nn.Hardswish())
        self.pw = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32),
                                nn.Hardswish(), nn.Conv2d(32, 16, 1, bias=False),
                                nn.BatchNorm2d(16))
        self.se = _SE(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        y = self.stem(x)
        y = y + self.se(self.pw(self.dw(y)))
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    net = TinyNet()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):   # non-trivial folded BN
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _calibration():
    g = torch.Generator().manual_seed(1)
    return [torch.rand(CALIB_BATCH, 3, 32, 32, generator=g) for _ in range(CALIB_BATCHES)]


PAIRS = [(f.name, r) for f in FORMATS for r in f.recipes]


@pytest.fixture(scope="module")
def model():
    return _tiny_net()


@pytest.fixture(scope="module")
def samples(model):
    g = torch.Generator().manual_seed(7)
    xs = [torch.rand(1, 3, 32, 32, generator=g) for _ in range(4)]
    with torch.no_grad():
        ref = np.stack([model(x).numpy() for x in xs])
    return [x.numpy() for x in xs], ref


@pytest.fixture(scope="module")
def built(model, tmp_path_factory):
    """{(format, recipe): ExportResult} for every row of the formats table."""
    out_dir = tmp_path_factory.mktemp("formats")
    example = torch.rand(1, 3, 32, 32)
    results = {}
    for name, recipe in PAIRS:
        fmt = get_format(name)
        job = ExportJob(module=model, example=example, recipe=recipe,
                        out_path=out_dir / fmt.artifact_name("tiny", recipe),
                        calibration=_calibration)
        results[(name, recipe)] = fmt.exporter()(job)
    return results


def _run(kind: str, path: Path, xs: list[np.ndarray]) -> np.ndarray:
    from runtime_py.backends import open_backend

    backend = open_backend(kind, path, threads=1)
    return np.stack([backend.run([x])[0] for x in xs])


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{f}-{r}" for f, r in PAIRS])
def test_artifact_written(built, pair):
    result = built[pair]
    assert result.path.exists()
    assert result.path.suffix == get_format(pair[0]).suffix
    if result.path.is_dir():
        assert (result.path / "Manifest.json").is_file()
    else:
        assert result.path.stat().st_size > 1000
    assert result.details["toolchain"]


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_fp32_matches_eager(built, samples, fmt, kind):
    xs, ref = samples
    got = _run(kind, built[(fmt, "fp32")].path, xs)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert float(np.abs(got - ref).max()) <= FP32_TOL


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_int8_static_snr(built, samples, fmt, kind):
    xs, ref = samples
    result = built[(fmt, "int8-static")]
    assert result.details["calibration_samples"] == CALIB_BATCHES * CALIB_BATCH
    got = _run(kind, result.path, xs)
    assert got.dtype == np.float32
    snr = snr_db(ref, got)
    assert INT8_SNR_FLOOR_DB <= snr < 120, f"int8 SNR {snr:.1f} dB"   # < 120: really quantized


@pytest.mark.parametrize("recipe", ["fp32", "int8-static"])
def test_tflite_io_is_float32(built, recipe):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(built[("litert", recipe)].path))
    for d in interp.get_input_details() + interp.get_output_details():
        assert d["dtype"] == np.float32, d["name"]
    ops = {o["op_name"] for o in interp._get_ops_details()}
    assert ("QUANTIZE" in ops) == (recipe == "int8-static")


@pytest.mark.parametrize("recipe", ["fp32", "int8-static"])
def test_xnnpack_fully_delegated(built, recipe):
    from runtime_py.backends.executorch import describe

    result = built[("executorch-xnnpack", recipe)]
    assert result.delegation["delegated_share"] == 1.0
    assert result.delegation["fallback_ops"] == []
    info = describe(result.path)
    assert info["delegates"] == ["XnnpackBackend"] and info["methods"] == ["forward"]


@pytest.mark.parametrize("recipe", ["fp16", "w8"])
def test_coreml_package_structure(built, recipe):
    from runtime_py.backends.coreml import describe

    result = built[("coreml", recipe)]
    info = describe(result.path)
    assert info["model_type"] == "mlProgram"
    assert info["inputs"] == [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "output0", "shape": [1, 10], "dtype": "float32"}]
    quantized = info["ops"].get("constexpr_affine_dequantize", 0) + \
        info["ops"].get("constexpr_blockwise_shift_scale", 0)
    if recipe == "w8":
        # stem, depthwise, both pointwise convs and the head have > 64 weights
        assert quantized >= 5 and len(result.details["quantized_ops"]) == quantized
    else:
        assert quantized == 0


def test_executorch_coreml_has_coreml_delegate(built):
    from runtime_py.backends.executorch import describe

    result = built[("executorch-coreml", "fp16")]
    assert describe(result.path)["delegates"] == ["CoreMLBackend"]
    assert result.delegation["delegated_share"] == 1.0


@pytest.mark.skipif(ON_APPLE, reason="the Core ML delegate may be available on Apple OSes")
def test_coreml_pte_unsupported_here(built):
    from runtime_py.backends.executorch import Backend

    with pytest.raises(UnsupportedError, match="Core ML delegate"):
        Backend(built[("executorch-coreml", "fp16")].path)


@pytest.mark.skipif(ON_APPLE, reason="Core ML predicts on macOS")
def test_coreml_backend_unsupported_here(built):
    from runtime_py.backends.coreml import Backend

    with pytest.raises(UnsupportedError, match="macOS"):
        Backend(built[("coreml", "fp16")].path)


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_corrupt_artifact_is_a_pocket_error(built, tmp_path, fmt, kind):
    from runtime_py.backends import open_backend

    good = built[(fmt, "fp32")].path
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(PocketError, match=bad.name):
        open_backend(kind, bad)


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_wrong_input_is_a_pocket_error(built, fmt, kind):
    from runtime_py.backends import open_backend

    backend = open_backend(kind, built[(fmt, "fp32")].path)
    with pytest.raises(PocketError, match="float32"):
        backend.run([np.zeros((1, 3, 32, 32), np.float64)])
    with pytest.raises(PocketError, match="expects"):
        backend.run([np.zeros((1, 3, 16, 16), np.float32)])
