import os

import numpy as np
import pytest

from sdk_builder.bundle import BundleError, read_tensor, staged_bundle, write_tensor


def _bundle(out, name="m-android", content="new"):
    with staged_bundle(out, name) as stage:
        (stage / "manifest.json").write_text(content)
    return out / name


def test_success_publishes_and_replaces(tmp_path):
    _bundle(tmp_path, content="old")
    final = _bundle(tmp_path, content="new")
    assert (final / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m-android.") and not p.name.endswith(".lock")] == []


def test_failure_keeps_the_old_bundle_and_leaves_no_half(tmp_path):
    final = _bundle(tmp_path, content="old")
    with pytest.raises(RuntimeError):
        with staged_bundle(tmp_path, "m-android") as stage:
            (stage / "manifest.json").write_text("half")
            raise RuntimeError("export crashed")
    assert (final / "manifest.json").read_text() == "old"
    assert not list(tmp_path.glob(".m-android.partial-*"))


def test_leftovers_of_a_killed_build_are_cleaned(tmp_path):
    final = _bundle(tmp_path, content="old")
    (tmp_path / ".m-android.partial-dead").mkdir()
    os.rename(final, tmp_path / ".m-android.old-123")   # killed between the two renames
    with staged_bundle(tmp_path, "m-android") as stage:
        assert (final / "manifest.json").read_text() == "old"   # restored before building
        (stage / "manifest.json").write_text("new")
    assert not list(tmp_path.glob(".m-android.partial-*")) and not list(tmp_path.glob(".m-android.old-*"))


def test_two_builds_of_one_bundle_do_not_mix(tmp_path):
    with staged_bundle(tmp_path, "m-android"):
        with pytest.raises(BundleError, match="another build"):
            with staged_bundle(tmp_path, "m-android"):
                pass


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BundleError, match="cannot create output folder"):
        with staged_bundle(blocker / "sub", "m-android"):
            pass


def test_tensor_files_are_little_endian_float32(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_tensor(tmp_path / "t.bin", x)
    assert (tmp_path / "t.bin").read_bytes() == x.astype("<f4").tobytes()
    np.testing.assert_array_equal(read_tensor(tmp_path / "t.bin", (2, 3)), x)
