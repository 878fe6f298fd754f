"""The `pocket` entry point on bad names, folders, weights and calibration data: one line on
stderr naming the problem and the fix, a non-zero exit, no traceback, nothing published."""
from __future__ import annotations

import errno
import os
import pickle
import subprocess
from pathlib import Path

import pytest

from sdk_builder.cli import main


TOY = [str(Path(__file__).resolve().parents[1] / "tools" / "make_toy_bundle.py") + ":toy_module",
       "--input-shape", "1,3,8,8"]


def pocket(capfd, *args: str) -> tuple[int, str]:
    """Run main() in-process; (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    err = capfd.readouterr().err
    return exit_info.value.code, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """The last stderr line is the error; lines before it may only be build progress (✓/✗)."""
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert lines and lines[-1].startswith("error: "), err
    assert all(ln.lstrip().startswith(("✓", "✗")) for ln in lines[:-1]), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[-1], err


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_pt(tmp_path: Path) -> Path:
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"conv.weight": _Evil(tmp_path / "pwned")}, fh)
    return path


def _wrong_shape_weights(tmp_path: Path) -> Path:
    from torch import nn

    from models.weights_io import save_weights

    return save_weights(nn.Sequential(nn.Linear(2, 2)), tmp_path / "other.safetensors")


def _garbage_safetensors(tmp_path: Path) -> Path:
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\xff" * 64)
    return path


def _not_a_state_dict(tmp_path: Path) -> Path:
    import torch

    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    return path


def _empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


BUILD_CASES = {
    "unknown-model": (lambda t: ["skipnet"], ["unknown model", "did you mean 'skipnet_m'"]),
    "unknown-target": (lambda t: ["skipnet_m", "-t", "andriod"], ["did you mean 'android'"]),
    "unknown-recipe": (lambda t: ["skipnet_m", "-r", "int8-statc"], ["did you mean 'int8-static'"]),
    "recipe-not-in-target": (lambda t: ["skipnet_m", "-t", "ios", "-r", "int8-static"], ["int8-static"]),
    "no-model-given": (lambda t: [], ["MODEL"]),
    "model-file-missing": (lambda t: ["--model-file", str(t / "nope.py:f"), "--input-shape", "1,3,8,8"],
                           ["nope.py"]),
    "weights-missing": (lambda t: ["skipnet_m", "--weights", str(t / "nope.pt")], ["does not exist"]),
    "weights-malicious-pickle": (lambda t: ["skipnet_m", "--weights", str(_evil_pt(t))],
                                 ["refused to load", "evil.pt"]),
    "weights-wrong-shapes": (lambda t: ["skipnet_m", "--weights", str(_wrong_shape_weights(t))],
                             ["weights do not match this model"]),
    "weights-garbage-safetensors": (lambda t: ["skipnet_m", "--weights", str(_garbage_safetensors(t))],
                                    ["cannot read safetensors file"]),
    "weights-not-a-state-dict": (lambda t: ["skipnet_m", "--weights", str(_not_a_state_dict(t))],
                                 ["list.pt"]),
    "calib-data-missing": (lambda t: ["skipnet_m", "-r", "int8-static", "--calib-data", str(t / "nope")],
                           ["calibration folder", "does not exist"]),
    "calib-data-no-images": (lambda t: ["skipnet_m", "-r", "int8-static", "--calib-data", str(_empty_folder(t))],
                             ["holds no images"]),
    "out-is-under-a-file": (lambda t: ["skipnet_m", "-o", str((t / "f").write_text("x") and t / "f" / "sub")],
                            ["cannot create output folder"]),
}


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_bad_build_request(tmp_path, capfd, case):
    make_args, needles = BUILD_CASES[case]
    args = make_args(tmp_path)
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out")]
    code, err = pocket(capfd, "build", *args)
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "pwned").exists()                  # the pickle never ran
    out = tmp_path / "out"
    leftovers = [p.name for p in out.iterdir() if not p.name.endswith((".lock", ".failed.log"))] if out.exists() else []
    assert leftovers == []                                     # no bundle, no staging folder


def test_full_disk_keeps_the_previous_bundle(tmp_path, capfd, monkeypatch):
    """ENOSPC while writing: a one-line 'no space left', the old bundle untouched."""
    import sdk_builder.build as build_mod

    old = tmp_path / "out" / "skipnet_m-android"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text("previous")

    def full(stage, *args, **kwargs):
        (stage / "golden").mkdir()
        (stage / "golden" / "input0.bin").write_bytes(b"\0" * 1024)
        raise OSError(errno.ENOSPC, "No space left on device", str(stage / "x.pte"))

    monkeypatch.setattr(build_mod, "_build_into", full)
    code, err = pocket(capfd, "build", "skipnet_m", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "no space left", "-o")
    assert (old / "manifest.json").read_text() == "previous"
    assert not list((tmp_path / "out").glob(".skipnet_m-android.partial-*"))


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 256 KiB filesystem (needs root and mount); skipped where unavailable."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                                          capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_really_full_disk(tiny_tmpfs, capfd):
    """A real almost-full filesystem: refused before any toolchain runs (the LiteRT converter
    would exit() the process on a write error)."""
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (250 * 1024 - 4096))
    code, err = pocket(capfd, "build", "--model-file", *TOY, "-r", "fp32", "-o", tiny_tmpfs)
    assert_one_line_error(code, err, "MiB free", "-o")
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["filler"]


def test_read_only_output_folder(tmp_path, capfd):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                          capture_output=True).returncode != 0:
            pytest.skip("root without mount: permissions do not apply")
    else:
        ro.chmod(0o500)
    try:
        code, err = pocket(capfd, "build", "skipnet_m", "-o", ro / "dist")
        assert_one_line_error(code, err, "output folder", "-o")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], check=False)
        ro.chmod(0o700)


def test_run_on_a_damaged_bundle_and_a_bad_image(tmp_path, capfd, manifest):
    from runtime_py import manifest as mf

    (tmp_path / "m.tflite").write_bytes(b"\0\0\0\0TFL3junk")
    manifest["artifacts"] = [{"file": "m.tflite", "format": "litert", "runtime": "litert",
                              "delegate": "xnnpack", "recipe": "fp32", "sha256": "0" * 64,
                              "size_bytes": 12, "golden_outputs": [], "verification": {"status": "passed"}}]
    mf.write(tmp_path, manifest)
    (tmp_path / "x.png").write_text("not an image")
    code, err = pocket(capfd, "run", tmp_path, tmp_path / "x.png")
    assert_one_line_error(code, err, "m.tflite", "sha256", "rebuild")
    code, err = pocket(capfd, "run", tmp_path, tmp_path / "x.png", "-a", "m.tflit")
    assert_one_line_error(code, err, "sha256")
    from runtime_py.integrity import sha256_of

    data = mf.read(tmp_path)
    data["artifacts"][0]["sha256"] = sha256_of(tmp_path / "m.tflite")
    mf.write(tmp_path, data)
    code, err = pocket(capfd, "run", tmp_path, tmp_path / "x.png", "-a", "nothing")
    assert_one_line_error(code, err, "no artifact 'nothing'")
    (tmp_path / "manifest.json").write_text("{")
    code, err = pocket(capfd, "info", tmp_path)
    assert_one_line_error(code, err, "not valid JSON", "rebuild")
