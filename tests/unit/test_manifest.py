import json

import pytest

from runtime_py import manifest as mf
from runtime_py.errors import IntegrityError


def test_round_trip(tmp_path, manifest):
    mf.write(tmp_path, manifest)
    assert mf.read(tmp_path) == manifest


def test_not_json_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(mf.ManifestError, match="not valid JSON"):
        mf.read(tmp_path)


def test_missing_manifest_says_what_a_bundle_is(tmp_path):
    with pytest.raises(mf.ManifestError, match="no manifest.json"):
        mf.read(tmp_path)


def test_other_schema_version_is_refused(tmp_path, manifest):
    manifest["schema_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(mf.ManifestError, match="schema_version 99 is not supported") as err:
        mf.read(tmp_path)
    assert "\n" not in str(err.value)


def test_missing_field_is_named(manifest):
    del manifest["input"]["mean"]
    with pytest.raises(mf.ManifestError, match="input.*mean"):
        mf.validate(manifest)


@pytest.mark.parametrize("bad", ["../evil.pte", "/etc/passwd", "a/../../b.pte", "C:evil.pte"])
def test_escaping_artifact_paths_fail_the_schema(manifest, bad):
    manifest["artifacts"].append({
        "file": bad, "format": "litert", "runtime": "litert", "delegate": "xnnpack", "recipe": "fp32",
        "sha256": "0" * 64, "size_bytes": 1, "golden_outputs": [], "verification": {"status": "passed"}})
    with pytest.raises(mf.ManifestError, match="artifacts/0/file"):
        mf.validate(manifest)


@pytest.mark.parametrize("bad", ["../x", "/abs/x", "a/../../x"])
def test_resolve_refuses_paths_outside_the_bundle(tmp_path, bad):
    with pytest.raises(IntegrityError, match="outside the bundle"):
        mf.resolve(tmp_path, bad)


def test_find_artifact_by_part_of_the_name(manifest):
    for name in ("m.xnnpack.fp32.pte", "m.litert.fp32.tflite"):
        manifest["artifacts"].append({"file": name})
    assert mf.find_artifact(manifest, "litert")["file"] == "m.litert.fp32.tflite"
    with pytest.raises(Exception, match="several artifacts"):
        mf.find_artifact(manifest, "fp32")
    with pytest.raises(Exception, match="did you mean"):
        mf.find_artifact(manifest, "m.litert.fp23.tflite")
