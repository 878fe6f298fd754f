import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from sdk_builder.cli import cli


def test_list_json_is_generated_from_the_tables():
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "skipnet_m" in [m["name"] for m in data["models"]]
    assert {f["name"] for f in data["formats"]} == {"executorch-xnnpack", "litert", "coreml", "executorch-coreml"}
    assert data["targets"]["android"][0] == "executorch-xnnpack:fp32"


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["run", "--help"],
                                  ["info", "--help"], ["verify", "--help"], ["list", "--help"]])
def test_every_command_has_help(args):
    assert CliRunner().invoke(cli, args).exit_code == 0


def _pocket(*args):
    return subprocess.run([sys.executable, "-m", "sdk_builder.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["build", "skipnet_m", "--target", "andriod"], "did you mean 'android'"),
    (["build", "skipnet_m", "--recipe", "int8-statc"], "did you mean 'int8-static'"),
    (["build", "skipnet", "--target", "android", "-o", "{tmp}"], "did you mean 'skipnet_m'"),
    (["info", "{tmp}"], "no manifest.json"),
    (["run", "{tmp}", "x.png"], "no manifest.json"),
])
def test_errors_are_one_line_with_non_zero_exit(tmp_path, args, message):
    proc = _pocket(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = _pocket("--debug", "info", str(tmp_path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_a_line_break_echoed_from_an_argument_stays_on_one_line(tmp_path, manifest):
    from runtime_py import manifest as mf
    from runtime_py.integrity import sha256_of

    (tmp_path / "m.tflite").write_bytes(b"\0\0\0\0TFL3")
    manifest["artifacts"] = [{"file": "m.tflite", "format": "litert", "runtime": "litert",
                              "delegate": "xnnpack", "recipe": "fp32", "size_bytes": 8,
                              "sha256": sha256_of(tmp_path / "m.tflite"), "golden_outputs": [],
                              "verification": {"status": "passed"}}]
    mf.write(tmp_path, manifest)
    proc = _pocket("run", str(tmp_path), "x.png", "-a", "no\nsuch\u2028artifact")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no artifact 'no such artifact'" in proc.stderr
