"""`pocket bench` end to end on a tiny bundle built here (ExecuTorch + LiteRT fp32, ~20 s):
JSON validates against the schema, references and ratios are present, delegation and
profiles are reported. No speed is asserted."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner


torch = pytest.importorskip("torch")
nn = torch.nn


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Hardswish(), nn.Conv2d(8, 8, 3, 1, 1, groups=8),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.body(x)


def _toy() -> nn.Module:
    torch.manual_seed(0)
    return Toy().eval()


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory) -> Path:
    from runtime_py.integrity import sha256_of
    from sdk_builder.formats import ExportJob, get_format
    from tests.conftest import _MANIFEST

    bundle = tmp_path_factory.mktemp("bench") / "toy-android"
    bundle.mkdir()
    example = torch.rand(1, 3, 4, 4)
    manifest = json.loads(json.dumps(_MANIFEST))
    manifest["model"]["name"] = "toy-not-in-zoo"
    (bundle / "golden").mkdir()
    example.numpy().astype("<f4").tofile(bundle / "golden" / "input0.bin")
    manifest["golden"] = {"inputs": ["golden/input0.bin"], "reference": [[]]}
    for fmt_name, runtime in (("executorch-xnnpack", "executorch"), ("litert", "litert")):
        fmt = get_format(fmt_name)
        out = bundle / fmt.artifact_name("toy-not-in-zoo", "fp32")
        result = fmt.export(ExportJob(module=_toy(), examples=(example,), recipe="fp32", out_path=out))
        manifest["artifacts"].append({
            "file": out.name, "format": fmt.name, "runtime": runtime, "delegate": fmt.delegate,
            "recipe": "fp32", "sha256": sha256_of(out), "size_bytes": out.stat().st_size,
            "delegation": result.delegation, "golden_outputs": [],
            "verification": {"status": "passed", "evaluation": {"artifact": 0.9}}})
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def _bench(bundle: Path, out: Path, *extra: str):
    from sdk_builder.cli import cli

    result = CliRunner().invoke(cli, ["bench", str(bundle), "--iters", "5", "--warmup", "1",
                                      "--json", "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_bench_json_validates_and_compares_against_eager_and_onnxruntime(toy_bundle, tmp_path, monkeypatch):
    from sdk_builder import bench as sb

    monkeypatch.setattr(sb, "eager_model", lambda manifest: (_toy(), None))
    data = _bench(toy_bundle, tmp_path / "r.json", "--roofline", "--profile")
    sb.validate(data)
    rows = {r["name"]: r for r in data["runs"][0]["rows"]}
    assert set(rows) == {"xnnpack.fp32", "litert.fp32", "eager", "onnxruntime"}
    for name in ("xnnpack.fp32", "litert.fp32"):
        assert rows[name]["speedup_vs_eager"] > 0 and rows[name]["speedup_vs_onnxruntime"] > 0
        assert "session_overhead_pct" in rows[name]
        assert rows[name]["latency"]["n"] == 5
    # ExecuTorch's record field keeps its name and holds the file-name tag
    assert {r["benchmarkModel"]["backend"] for r in data["records"]} == \
        {"xnnpack", "litert", "pytorch-eager", "onnxruntime-cpu"}
    assert rows["litert.fp32"]["delegated_share"] == 1.0          # read from the runtime at build
    assert {r["name"] for r in data["roofline"]["rows"]} == set(rows)
    assert [p["artifact"].split(".")[1] for p in data["profiles"]] == ["xnnpack", "litert"]
    litert, xnnpack = (next(p for p in data["profiles"] if p["artifact"].endswith(suffix))
                       for suffix in (".tflite", ".pte"))
    assert litert["available"] and any("Conv" in op["name"] for op in litert["ops"])
    assert all(op["calls"] % 20 == 0 for op in litert["ops"])     # 20 profiled runs, every op each time
    if not xnnpack["available"]:          # the pip ExecuTorch has no event tracer: a stand-in
        assert xnnpack["reason"] and xnnpack["proxy"]["measured_on"] == litert["artifact"]
    assert sorted(data["plots"]) == ["r.latency.png", "r.tradeoff.png"]
    assert (tmp_path / "r.latency.png").is_file()
    metrics = {r["metric"] for r in data["records"]}
    assert {"latency_p99", "latency_trimmed_mean", "throughput", "load_time",
            "first_inference", "speedup_vs_onnxruntime", "achieved_gflops"} <= metrics


def test_a_model_outside_the_zoo_skips_the_references_with_a_note(toy_bundle, tmp_path):
    data = _bench(toy_bundle, tmp_path / "r.json", "--artifact", "litert", "--no-plots", "--no-overhead")
    assert [r["name"] for r in data["runs"][0]["rows"]] == ["litert.fp32"]
    assert any("not in the zoo registry" in n for n in data["notes"])
    assert "plots" not in data


def test_litert_delegation_is_read_from_the_runtime(toy_bundle):
    from runtime_py.runtimes.litert.coverage import litert_delegation

    d = litert_delegation(next(toy_bundle.glob("*.tflite")))
    assert d["total_ops"] >= 4 and d["delegated_ops"] == d["total_ops"]
    assert d["fallback_ops"] == [] and d["delegated_subgraphs"] == 1
    assert np.isclose(d["delegated_share"], 1.0)


def test_a_modified_artifact_is_refused_before_it_is_timed(toy_bundle, tmp_path):
    import shutil

    from sdk_builder.cli import cli

    bundle = Path(shutil.copytree(toy_bundle, tmp_path / "b"))
    target = next(bundle.glob("*.tflite"))
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = CliRunner().invoke(cli, ["bench", str(bundle), "--iters", "2", "--against", "none"])
    assert result.exit_code != 0
    assert "does not match the sha256" in str(result.exception)
    assert not list(tmp_path.glob("*.bench.json"))
