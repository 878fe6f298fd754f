"""The bench harness: statistics, interleaving, ratios, delegation cover, schema, plots, CLI.
No test here times a real runtime or asserts a speed."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from click.testing import CliRunner

from runtime_py import bench as hb
from runtime_py.runtimes.litert.coverage import partition_cover, summarize as deleg_summary
from runtime_py.errors import PocketError, UsageError
from runtime_py.op_profile import aggregate
from sdk_builder import bench as sb
from sdk_builder.cli import cli


# ------------------------------------------------------------------ statistics
def test_percentiles_on_a_known_array():
    x = list(range(1, 101))                   # 1..100
    assert hb.percentile(x, 50) == pytest.approx(50.5)
    assert hb.percentile(x, 90) == pytest.approx(90.1)
    assert hb.percentile(x, 99) == pytest.approx(99.01)
    assert hb.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        hb.percentile([], 50)


def test_trimmed_mean_drops_ten_percent_at_each_end():
    x = [1000.0] + [1.0] * 8 + [-1000.0]      # n=10: one dropped at each end
    assert hb.trimmed_mean(x) == 1.0
    assert np.mean(x) == pytest.approx(0.8)   # the plain mean is pulled by the outliers
    assert hb.trimmed_mean([5.0, 1.0, 3.0]) == 3.0   # n=3: nothing to drop
    y = list(range(20))                       # drops 0, 1 and 18, 19
    assert hb.trimmed_mean(y) == pytest.approx(np.mean(range(2, 18)))


def test_summarize_reports_milliseconds_and_throughput():
    s = hb.summarize([0.002] * 9 + [0.100])   # seconds
    assert s["n"] == 10
    assert s["p50_ms"] == pytest.approx(2.0)
    assert s["trimmed_mean_ms"] == pytest.approx(2.0)
    assert s["mean_ms"] == pytest.approx(11.8)
    assert s["max_ms"] == pytest.approx(100.0)
    assert s["throughput_ips"] == pytest.approx(500.0)


# ------------------------------------------------------------------ interleaving
class FakeClock:
    """A clock that only moves when a fake candidate 'runs' for its cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def candidate(self, name, cost, log):
        def call():
            log.append(name)
            self.now += cost
        return hb.Candidate(name, call)


def test_round_robin_rotates_the_start_and_calls_each_once_per_round():
    clock, log = FakeClock(), []
    cands = [clock.candidate(n, 0.001, log) for n in "abc"]
    times = hb.run_interleaved(cands, iters=3, order="rotate", clock=clock)
    assert log == list("abc" "bca" "cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_shuffled_rounds_call_each_once_and_vary_the_neighbours():
    clock, log = FakeClock(), []
    cands = [clock.candidate(n, 0.001, log) for n in "abcd"]
    hb.run_interleaved(cands, iters=200, clock=clock)
    rounds = ["".join(log[i:i + 4]) for i in range(0, len(log), 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)
    before_a = {log[i - 1] for i in range(1, len(log)) if log[i] == "a"}
    assert {"b", "c", "d"} <= before_a            # "a" does not always follow the same one
    clock2, log2 = FakeClock(), []
    hb.run_interleaved([clock2.candidate(n, 0.001, log2) for n in "abcd"], iters=200, clock=clock2)
    assert log2 == log                             # seeded: the schedule is reproducible


def test_blocks_keep_turns_together_and_count_exactly():
    clock, log = FakeClock(), []
    cands = [clock.candidate(n, 0.001, log) for n in "ab"]
    times = hb.run_interleaved(cands, iters=5, block=2, order="rotate", clock=clock)
    assert log == list("aabb" "bbaa" "ab")
    assert len(times["a"]) == len(times["b"]) == 5


def test_speedups_come_from_the_interleaved_times():
    clock, log = FakeClock(), []
    cands = [clock.candidate("eager", 0.010, log), clock.candidate("fast", 0.002, log),
             clock.candidate("ort", 0.004, log)]
    stats = {k: hb.summarize(v) for k, v in hb.run_interleaved(cands, 20, clock=clock).items()}
    r = hb.ratios(stats, "eager")
    assert r["fast"] == pytest.approx(5.0)
    assert r["ort"] == pytest.approx(2.5)
    assert hb.ratios(stats, "ort")["fast"] == pytest.approx(2.0)


def test_drift_hits_interleaved_candidates_alike():
    """A machine that slows down linearly: equal-cost candidates still measure equal."""
    clock, log = FakeClock(), []

    def drifting(name):
        def call():
            log.append(name)
            clock.now += 0.001 * (1 + len(log) / 100)
        return hb.Candidate(name, call)

    cands = [drifting("a"), drifting("b")]
    stats = {k: hb.summarize(v) for k, v in hb.run_interleaved(cands, 200, clock=clock).items()}
    assert hb.ratios(stats, "a")["b"] == pytest.approx(1.0, rel=0.01)


def test_prepare_times_load_and_first_call_and_warms_up():
    clock, calls = FakeClock(), []

    def load():
        clock.now += 0.5
        def call():
            calls.append(1)
            clock.now += 0.01
        return call

    c = hb.prepare("x", load, warmup=3, clock=clock)
    assert c.load_ms == pytest.approx(500.0)
    assert c.first_ms == pytest.approx(10.0)
    assert len(calls) == 4


def test_achieved_gflops():
    assert hb.achieved_gflops(5_000_000, 1.0) == pytest.approx(10.0)   # 10 MFLOP in 1 ms


# ------------------------------------------------------------------ delegation cover
def _node(name, inputs, outputs):
    return {"op_name": name, "inputs": inputs, "outputs": outputs}


def test_one_delegate_covering_the_whole_chain():
    nodes = [_node("CONV_2D", [0, 10], [1]), _node("HARD_SWISH", [1], [2]),
             _node("FULLY_CONNECTED", [2, 11], [3]),
             _node("DELEGATE", [0, 10, 11], [3])]
    covered, n = partition_cover(nodes, 3)
    assert covered == {0, 1, 2} and n == 1
    s = deleg_summary(nodes, 3)
    assert s["delegated_share"] == 1.0 and s["fallback_ops"] == []


def test_a_fallback_op_splits_the_delegate_in_two():
    nodes = [_node("CONV_2D", [0], [1]), _node("HARD_SWISH", [1], [2]), _node("CONV_2D", [2], [3]),
             _node("DELEGATE", [0], [1]), _node("DELEGATE", [2], [3])]
    s = deleg_summary(nodes, 3)
    assert s["delegated_ops"] == 2 and s["total_ops"] == 3
    assert s["fallback_ops"] == ["HARD_SWISH"] and s["fallback_counts"] == {"HARD_SWISH": 1}
    assert s["delegated_subgraphs"] == 2
    assert s["delegated_share"] == pytest.approx(2 / 3, abs=1e-4)


def test_no_delegate_means_everything_falls_back():
    nodes = [_node("CONV_2D", [0], [1]), _node("ADD", [1, 0], [2])]
    s = deleg_summary(nodes, 2)
    assert s["delegated_ops"] == 0 and s["fallback_ops"] == ["ADD", "CONV_2D"]


# ------------------------------------------------------------------ op profile rows
def test_aggregate_groups_sorts_and_shares():
    rows = aggregate([("conv", 2.0), ("add", 1.0), ("conv", 4.0), ("relu", 1.0)])
    assert [r["name"] for r in rows] == ["conv", "add", "relu"]
    assert rows[0]["calls"] == 2 and rows[0]["avg_ms"] == 3.0
    assert rows[0]["share"] == pytest.approx(0.75)
    assert len(aggregate([("a", 1.0), ("b", 2.0)], top=1)) == 1


# ------------------------------------------------------------------ schema
def fake_result() -> dict:
    device = hb.device_info()
    stats = hb.summarize([0.001, 0.002, 0.003])
    art = {"name": "xnnpack.fp32", "kind": "artifact", "file": "toy.xnnpack.fp32.pte",
           "runtime": "executorch", "backend": "xnnpack", "recipe": "fp32", "format": "executorch-xnnpack",
           "load_ms": 3.0, "first_ms": 1.0, "peak_rss_delta_bytes": 1024, "latency": stats,
           "speedup_vs_eager": 4.0, "size_bytes": 1000, "accuracy": 0.98, "verification": "passed",
           "delegated_share": 1.0, "session_overhead_pct": 3.0}
    eager = {"name": "eager", "kind": "reference", "runtime": "torch", "backend": "pytorch-eager",
             "recipe": "fp32", "load_ms": 0.1, "first_ms": 9.0, "peak_rss_delta_bytes": None,
             "latency": hb.summarize([0.008, 0.008])}
    cand = hb.Candidate("xnnpack.fp32", lambda: None, {k: art[k] for k in ("file", "runtime", "backend", "recipe")},
                        3.0, 1.0, 1024)
    return {"schema_version": 1, "kind": "pocketvision.bench", "created": "2026-01-01T00:00:00+00:00",
            "bundle": "dist/toy-android", "model": {"name": "toy", "params": 10, "macs": 1000},
            "settings": {"threads": [1], "warmup": 1, "iters": 3, "against": ["eager"], "interleaved": True},
            "deviceInfo": device, "runtimes": hb.runtime_versions(), "notes": [],
            "runs": [{"threads": 1, "rows": [art, eager]}],
            "records": hb.records("toy", cand, stats, 1, device, {"speedup_vs_eager": 4.0})}


def test_a_result_validates_and_records_use_executorch_field_names():
    result = fake_result()
    sb.validate(result)
    rec = result["records"][0]
    assert set(rec) >= {"benchmarkModel", "metric", "actualValue", "deviceInfo", "threads", "unit"}
    assert rec["benchmarkModel"] == {"name": "toy", "backend": "xnnpack", "quantization": "fp32"}
    metrics = {r["metric"]: r for r in result["records"]}
    assert metrics["latency_trimmed_mean"]["unit"] == "ms"
    assert metrics["speedup_vs_eager"]["actualValue"] == 4.0


@pytest.mark.parametrize("breakage", ["no_records", "bad_kind", "bad_metric_value", "bad_version"])
def test_schema_refuses_broken_results(breakage):
    result = copy.deepcopy(fake_result())
    if breakage == "no_records":
        del result["records"]
    elif breakage == "bad_kind":
        result["runs"][0]["rows"][0]["kind"] = "probe"
    elif breakage == "bad_metric_value":
        result["records"][0]["actualValue"] = "fast"
    else:
        result["schema_version"] = 2
    with pytest.raises(PocketError, match="bench result is invalid"):
        sb.validate(result)


def test_write_puts_json_and_pngs_side_by_side(tmp_path):
    result = fake_result()
    written = sb.write(result, tmp_path / "out" / "r.json")
    names = sorted(p.name for p in written)
    assert names == ["r.json", "r.latency.png", "r.tradeoff.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "out" / "r.latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ options and CLI
def test_threads_and_against_parsing():
    assert sb.parse_threads("1,2,2") == [1, 2]
    assert sb.parse_against("eager, onnxruntime") == ["eager", "onnxruntime"]
    assert sb.parse_against("none") == []
    with pytest.raises(UsageError):
        sb.parse_threads("1,x")
    with pytest.raises(UsageError):
        sb.parse_threads("0")
    with pytest.raises(UsageError, match="did you mean 'eager'"):
        sb.parse_against("eagre")


def test_record_backend_is_the_file_name_tag():
    """benchmarkModel.backend (ExecuTorch's name) holds the tag the artifact's file name has."""
    entries = [("executorch-xnnpack", "executorch", "xnnpack", "xnnpack"),
               ("litert", "litert", "xnnpack", "litert"),
               ("coreml", "coreml", None, "coreml"),
               ("executorch-coreml", "executorch", "coreml", "coreml")]
    for fmt, runtime, delegate, tag in entries:
        entry = {"file": f"toy.{tag}.fp32.x", "format": fmt, "runtime": runtime, "delegate": delegate}
        assert sb.record_backend(entry) == tag


def test_default_out_is_beside_the_bundle(tmp_path):
    assert sb.default_out(tmp_path / "toy-android") == tmp_path / "toy-android.bench.json"


def test_bench_help():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--against" in result.output and "--roofline" in result.output


def test_info_lists_litert_fallback_ops(tmp_path, manifest):
    import json

    (tmp_path / "toy.litert.int8-static.tflite").write_bytes(b"x")
    manifest["artifacts"] = [{
        "file": "toy.litert.int8-static.tflite", "format": "litert", "runtime": "litert",
        "delegate": "xnnpack", "recipe": "int8-static", "sha256": "0" * 64, "size_bytes": 1,
        "golden_outputs": [], "verification": {"status": "passed"},
        "delegation": {"delegated_ops": 9, "total_ops": 10, "delegated_share": 0.9,
                       "fallback_ops": ["HARD_SWISH"], "delegated_subgraphs": 2}}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["info", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "not delegated: HARD_SWISH" in result.output


def test_bench_section_in_the_bundle_report_links_the_files_and_is_replaced_on_rerun(tmp_path):
    from sdk_builder.bench import link_from_report

    bundle = tmp_path / "m-android"
    bundle.mkdir()
    (bundle / "report.md").write_text("# m\n\nbuild numbers\n", encoding="utf-8")
    written = [tmp_path / "m-android.bench.json", tmp_path / "m-android.bench.latency.png"]
    result = {"created": "2026-01-01T00:00:00+00:00",
              "deviceInfo": {"cpu": "CPU", "cores": 2, "os": "Linux"},
              "runs": [{"threads": 1, "best": "a", "rows": [
                  {"name": "a", "speedup_vs_eager": 10.0, "speedup_vs_onnxruntime": 1.5}]}]}
    assert link_from_report(bundle, written, result) == bundle / "report.md"
    result["runs"][0]["rows"][0]["speedup_vs_eager"] = 12.0
    link_from_report(bundle, written, result)
    text = (bundle / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# m\n\nbuild numbers\n")
    assert text.count("## Benchmark") == 1 and "12.00× PyTorch eager" in text and "10.00×" not in text
    assert "](../m-android.bench.json)" in text and "![m-android.bench.latency.png](../m-android.bench.latency.png)" in text
    for link in ("../m-android.bench.json", "../m-android.bench.latency.png"):
        assert (bundle / link).resolve() == (tmp_path / link[3:]).resolve()


def test_no_report_no_link(tmp_path):
    from sdk_builder.bench import link_from_report

    assert link_from_report(tmp_path, [], {}) is None
