"""Every format x recipe exported from a small CNN and checked in the real runtimes.

One module-scoped build exports all artifacts once (~1.5 min on 2 cores); each test then
asserts one property of them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest


torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from runtime_py.errors import PocketError  # noqa: E402
from sdk_builder.formats import FORMATS, ExportJob, get_format  # noqa: E402
from sdk_builder.quantize.parity import parity  # noqa: E402

FP32_TOL = 1e-4
# int8 floor: one int8 quantizer alone gives ~40-50 dB on well-spread activations; across
# this net's ~8 quantized layers we measure 40-46 dB (XNNPACK, LiteRT). A broken recipe
# (wrong scales, lost calibration, uint8/int8 mix-up, float I/O read as int8) lands below
# 10 dB, so 25 dB (RMS error ~5.6 % of the signal) fails those and still leaves ~15 dB
# of margin for calibration noise.
INT8_SNR_FLOOR_DB = 25.0
# Floors per recipe of the .pte/.tflite artifacts (SNR of 4 outputs against eager, dB),
# each ~10-25 dB under what this net measures, and far above what a broken recipe gives
# (< 10 dB: wrong scales, dropped groups, int8 read as float):
SNR_FLOOR_DB = {
    # fp16 weights, fp32 compute: weight rounding error 2^-11 relative -> ~66 dB per
    # weight; measured ~80 dB.
    "fp16": 55.0,
    # int8 weights only: measured ~52 dB (LiteRT).
    "w8": 35.0,
    # int8 weights + run-time int8 activations: measured ~50 dB (LiteRT, XNNPACK).
    "int8-dynamic": 30.0,
    "int8-static": INT8_SNR_FLOOR_DB,
    # per-tensor weight scales: the depthwise conv's channels differ in range after BN
    # folding, so a few channels get coarse steps; measured ~35 dB.
    "int8-static-per-tensor": 20.0,
    # only the 32-wide Linear is int4 (groups of 32, step = max/7): ~20-30 dB on its own
    # output; measured ~27 dB at the net's output. A nibble-order or group-scale bug lands
    # near 0 dB.
    "int8da-w4g32": 15.0,
}
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
    """conv-bn-hardswish, depthwise, squeeze-excite, residual add, two-linear head."""

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
        self.fc = nn.Linear(16, 32)      # in_features 16: no int4 groups of 32
        self.head = nn.Linear(32, 10)    # in_features 32: int8da-w4g32 quantizes this one

    def forward(self, x):
        y = self.stem(x)
        y = y + self.se(self.pw(self.dw(y)))
        y = F.hardswish(self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1)))
        return self.head(y)


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
        job = ExportJob(module=model, examples=(example,), recipe=recipe,
                        out_path=out_dir / fmt.artifact_name("tiny", recipe),
                        calibration=_calibration)
        results[(name, recipe)] = fmt.export(job)
    return results


def _run(kind: str, path: Path, xs: list[np.ndarray]) -> np.ndarray:
    from runtime_py.runtimes import open_runner

    runner = open_runner(kind, path, threads=1)
    return np.stack([runner.run([x])[0] for x in xs])


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


RUNNABLE = [(f, r) for f, r in PAIRS if r != "fp32" and f in ("executorch-xnnpack", "litert")]
KIND = {"executorch-xnnpack": "executorch", "litert": "litert"}


@pytest.mark.parametrize("pair", RUNNABLE, ids=[f"{f}-{r}" for f, r in RUNNABLE])
def test_compressed_snr(built, samples, pair):
    """Every non-fp32 .pte/.tflite runs in its real runtime with float32 I/O, close to
    eager (recipe floor) and really compressed (not bit-exact)."""
    xs, ref = samples
    result = built[pair]
    got = _run(KIND[pair[0]], result.path, xs)
    assert got.dtype == np.float32 and got.shape == ref.shape
    snr = parity(ref, got)["snr_db"]
    assert SNR_FLOOR_DB[pair[1]] <= snr < 120, f"{pair} SNR {snr:.1f} dB"
    if pair[1].startswith("int8-static"):
        assert result.details["calibration_samples"] == CALIB_BATCHES * CALIB_BATCH


LITERT = get_format("litert").recipes
XNNPACK = get_format("executorch-xnnpack").recipes
COREML = get_format("coreml").recipes


@pytest.mark.parametrize("recipe", LITERT)
def test_tflite_io_is_float32(built, recipe):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(built[("litert", recipe)].path))
    for d in interp.get_input_details() + interp.get_output_details():
        assert d["dtype"] == np.float32, d["name"]
    ops = {o["op_name"] for o in interp._get_ops_details()}
    assert ("QUANTIZE" in ops) == (recipe == "int8-static")


def test_litert_int8_static_keeps_hardswish_on_xnnpack_without_extra_transposes(built):
    """int8 HARD_SWISH is not an XNNPACK op in LiteRT: the exporter rewrites hardswish so the
    delegate takes it, with constants shaped so the layout pass adds no transposes."""
    from runtime_py.runtimes.litert.coverage import litert_delegation

    int8, fp32 = built[("litert", "int8-static")], built[("litert", "fp32")]
    assert "HARD_SWISH" not in int8.details["op_counts"]
    assert "HARD_SWISH" not in litert_delegation(int8.path)["fallback_ops"]
    assert int8.details["op_counts"].get("TRANSPOSE", 0) == fp32.details["op_counts"].get("TRANSPOSE", 0)


@pytest.mark.parametrize("recipe", LITERT)
def test_tflite_weights_stored_as_recipe_says(built, recipe):
    details = built[("litert", recipe)].details
    dtypes, ops = details["tensor_dtypes"], details["op_counts"]
    # TinyNet has 8 conv/linear weights (SE convs included).
    expected = {"fp32": ("float16", 0), "fp16": ("float16", 8), "w8": ("int8", 8),
                "int8-dynamic": ("int8", 8)}
    if recipe in expected:
        dtype, count = expected[recipe]
        assert dtypes.get(dtype, 0) == count, dtypes
    if recipe in ("fp16", "w8"):      # weight-only: explicit DEQUANTIZE, float compute
        assert ops.get("DEQUANTIZE", 0) == 8, ops
    if recipe == "int8-dynamic":      # hybrid kernels: no DEQUANTIZE of the weights
        assert "DEQUANTIZE" not in ops and "QUANTIZE" not in ops, ops
    if recipe in ("fp16", "int8-dynamic", "w8"):
        assert details["quantizer"].startswith("ai-edge-quantizer")
        assert built[("litert", recipe)].path.stat().st_size < details["fp32_size_bytes"]


@pytest.mark.parametrize("recipe", XNNPACK)
def test_xnnpack_fully_delegated(built, recipe):
    from runtime_py.runtimes.executorch import describe

    result = built[("executorch-xnnpack", recipe)]
    assert result.delegation["delegated_share"] == 1.0
    assert result.delegation["fallback_ops"] == []
    info = describe(result.path)
    assert info["delegates"] == ["XnnpackBackend"] and info["methods"] == ["forward"]


@pytest.mark.parametrize("recipe", XNNPACK)
def test_xnnpack_quantized_weight_ops(built, recipe):
    details = built[("executorch-xnnpack", recipe)].details
    quantized, float_ = details["quantized_weight_ops"], details["float_weight_ops"]
    # 6 convs (SE convs included) + 2 linears. int8-dynamic: XNNPACKQuantizer's dynamic
    # patterns skip depthwise convs and convs feeding a ReLU (the SE squeeze), so 6 of 8.
    expected = {"fp32": 0, "int8-dynamic": 6, "int8-static": 8, "int8-static-per-tensor": 8,
                "int8da-w4g32": 1}[recipe]
    assert (quantized, quantized + float_) == (expected, 8), details
    if recipe == "int8da-w4g32":
        assert details["quantized_linear_layers"] == 1 and details["float_linear_layers"] == 1


def test_int8da_w4g32_refuses_model_without_suitable_linear(tmp_path):
    from runtime_py.errors import UsageError

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)).eval()
    job = ExportJob(module=net, examples=(torch.rand(1, 3, 8, 8),), recipe="int8da-w4g32",
                    out_path=tmp_path / "x.pte")
    with pytest.raises(UsageError, match="does not apply: no nn.Linear with in_features divisible by 32") as err:
        get_format("executorch-xnnpack").export(job)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fmt,recipe", [("litert", "palettize-4bit"), ("coreml", "int8-static"),
                                        ("executorch-xnnpack", "w8"),
                                        ("executorch-coreml", "int8-static")])
def test_unknown_recipe_lists_accepted(model, tmp_path, fmt, recipe):
    from runtime_py.errors import UsageError

    f = get_format(fmt)
    job = ExportJob(module=model, examples=(torch.rand(1, 3, 32, 32),), recipe=recipe,
                    out_path=tmp_path / f.artifact_name("tiny", recipe))
    with pytest.raises(UsageError, match="it accepts: " + ", ".join(f.recipes)):
        f.export(job)


def test_target_refuses_recipe_of_other_target():
    from runtime_py.errors import UsageError
    from sdk_builder.formats import plan_target

    with pytest.raises(UsageError, match="not offered for target 'android'"):
        plan_target("android", ["palettize-4bit"])
    assert [(f.name, r) for f, r in plan_target("all", ["int8-dynamic"])] == \
        [("executorch-xnnpack", "int8-dynamic"), ("litert", "int8-dynamic")]


COREML_OP = {"fp16": None, "w8": ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"),
             "palettize-6bit": ("constexpr_lut_to_dense",),
             "palettize-4bit": ("constexpr_lut_to_dense",),
             "prune-50": ("constexpr_sparse_to_dense",)}


@pytest.mark.parametrize("recipe", COREML)
def test_coreml_package_structure(built, recipe):
    from runtime_py.runtimes.coreml import describe

    result = built[("coreml", recipe)]
    info = describe(result.path)
    assert info["model_type"] == "mlProgram"
    assert info["inputs"] == [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "output0", "shape": [1, 10], "dtype": "float32"}]
    compressed = sum(n for op, n in info["ops"].items() if op.startswith("constexpr"))
    if COREML_OP[recipe] is None:
        assert compressed == 0
        return
    kind = sum(info["ops"].get(op, 0) for op in COREML_OP[recipe])
    # stem, depthwise, both pointwise convs, fc and head have > 64 weights; the SE convs
    # (64 weights each) stay fp16
    assert kind == compressed == 6 and len(result.details["quantized_ops"]) == 6
    assert len(result.details["float_weight_ops"]) == 2
    assert result.details["compressed_weight_ops"] == {
        op: n for op, n in info["ops"].items() if op.startswith("constexpr")}


@pytest.mark.parametrize("recipe,unique", [("palettize-6bit", 64), ("palettize-4bit", 16)])
def test_coreml_palettes(built, recipe, unique):
    details = built[("coreml", recipe)].details
    assert details["palette_size"] == unique
    assert details["max_unique_values_per_tensor"] == unique   # every LUT entry used


def test_coreml_prune_sparsity(built):
    details = built[("coreml", "prune-50")].details
    assert details["target_sparsity"] == 0.5
    assert abs(details["sparsity_of_compressed"] - 0.5) < 0.01


def test_compressed_twin_matches_coreml_weights(model):
    """sdk_builder.quantize.estimate reproduces the weights Core ML stores (cross-check against the
    constexpr ops of the converted program): exactly for w8 and prune-50 (same rule, same
    fp16 arithmetic); palettes within a few fp16 ulps (same scikit-learn k-means, measured
    max diff 1.2e-4)."""
    pytest.importorskip("sklearn")
    from sdk_builder.quantize.estimate import compressed_twin
    from sdk_builder.formats.coreml import _compress, compressed_weights, convert_fp16

    def weights(module):   # TinyNet's compressed weights have unique shapes
        return {tuple(m.weight.shape): m.weight.detach().numpy() for m in module.modules()
                if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.numel() > 64}

    fp16 = convert_fp16(model, (torch.rand(1, 3, 32, 32),))
    for recipe, tol in (("w8", 0.0), ("prune-50", 0.0), ("palettize-4bit", 1e-3)):
        stored = compressed_weights(_compress(fp16, recipe)[0])
        twin = weights(compressed_twin(model, recipe))
        assert len(stored) == len(twin) == 6
        for w in stored.values():
            diff = float(np.abs(w - twin[w.shape]).max())
            assert diff <= tol, (recipe, w.shape, diff)


def test_executorch_coreml_has_coreml_delegate(built):
    from runtime_py.runtimes.executorch import describe

    for recipe in ("fp16", "w8"):
        result = built[("executorch-coreml", recipe)]
        assert describe(result.path)["delegates"] == ["CoreMLBackend"]
        assert result.delegation["delegated_share"] == 1.0
    fp16, w8 = (built[("executorch-coreml", r)].path.stat().st_size for r in ("fp16", "w8"))
    assert w8 < fp16      # int8 weights inside the delegate payload instead of float16


@pytest.mark.skipif(ON_APPLE, reason="Apple's ExecuTorch runs the Core ML delegate itself")
def test_coreml_pte_runs_its_embedded_program_here(built, samples):
    xs, ref = samples
    for recipe in ("fp16", "w8"):
        got = _run("executorch", built[("executorch-coreml", recipe)].path, xs)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 0.05 * np.abs(ref).max(), recipe
    from runtime_py.runtimes.executorch import Runner

    assert Runner(built[("executorch-coreml", "fp16")].path).label == "executorch/coreml/emulated"


def test_coreml_delegate_unflattens_as_executorch_does(built, tmp_path):
    from executorch.backends.apple.coreml import executorchcoreml

    from runtime_py.runtimes.executorch import pte_file
    from runtime_py.runtimes.coreml.delegate import unflatten

    (delegate,) = pte_file.delegates(built[("executorch-coreml", "fp16")].path)
    assert delegate.id == "CoreMLBackend"
    executorchcoreml.unflatten_directory_contents(delegate.data, str(tmp_path))
    (root,) = tmp_path.iterdir()
    theirs = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    mine = unflatten(delegate.data)
    assert mine.keys() == theirs.keys() and "model.mlpackage/Manifest.json" in mine
    assert all(mine[k] == theirs[k] for k in mine)


@pytest.mark.skipif(ON_APPLE, reason="Core ML predicts on macOS")
def test_coreml_runtime_runs_the_program_emulated_here(built):
    from runtime_py.runtimes.coreml import Runner

    runner = Runner(built[("coreml", "fp16")].path)
    assert runner.label == "coreml/emulated"
    outputs = runner.run([np.zeros(runner.input_shapes[0], np.float32)])
    assert [o.shape for o in outputs] == runner.output_shapes and np.isfinite(outputs[0]).all()


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_corrupt_artifact_is_a_pocket_error(built, tmp_path, fmt, kind):
    from runtime_py.runtimes import open_runner

    good = built[(fmt, "fp32")].path
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(PocketError, match=bad.name):
        open_runner(kind, bad)


@pytest.mark.parametrize("fmt,kind", [("executorch-xnnpack", "executorch"), ("litert", "litert")])
def test_wrong_input_is_a_pocket_error(built, fmt, kind):
    from runtime_py.runtimes import open_runner

    runner = open_runner(kind, built[(fmt, "fp32")].path)
    with pytest.raises(PocketError, match="float32"):
        runner.run([np.zeros((1, 3, 32, 32), np.float64)])
    with pytest.raises(PocketError, match="expects"):
        runner.run([np.zeros((1, 3, 16, 16), np.float32)])
