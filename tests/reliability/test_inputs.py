"""Bad manifests, images and tensors: a clean one-line PocketError each (no native code)."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime_py import manifest as mf
from runtime_py.errors import IntegrityError
from runtime_py.manifest import ManifestError
from runtime_py.preprocess import InputError, preprocess
from runtime_py.session import check_artifacts


SPEC = {"name": "input", "shape": [1, 3, 8, 8], "dtype": "float32", "layout": "NCHW", "color": "RGB",
        "range": [0.0, 1.0], "mean": [0.5] * 3, "std": [0.25] * 3, "normalize_in_graph": False,
        "resize": "bilinear"}


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# ---- manifest ---------------------------------------------------------------------------

def _artifact(bundle: Path, name: str = "m.tflite") -> dict:
    (bundle / name).write_bytes(b"\0\0\0\0TFL3 not really")
    from runtime_py.integrity import sha256_of

    return {"file": name, "format": "litert", "runtime": "litert", "delegate": "xnnpack",
            "recipe": "fp32", "sha256": sha256_of(bundle / name), "size_bytes": 17,
            "golden_outputs": [], "verification": {"status": "passed"}}


def _write_raw(bundle: Path, text: str | bytes) -> None:
    path = bundle / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


MANIFEST_CASES = {
    "not-json": (lambda b, m: _write_raw(b, "{not json"), ManifestError, "not valid JSON"),
    "empty-file": (lambda b, m: _write_raw(b, ""), ManifestError, "not valid JSON"),
    "binary-garbage": (lambda b, m: _write_raw(b, bytes(range(256))), ManifestError, "not valid JSON"),
    "json-array": (lambda b, m: _write_raw(b, "[1, 2]"), ManifestError, "JSON object"),
    "schema-version-99": (lambda b, m: _write_raw(b, json.dumps({**m, "schema_version": 99})),
                          ManifestError, "schema_version 99 is not supported"),
    "schema-version-string": (lambda b, m: _write_raw(b, json.dumps({**m, "schema_version": "1"})),
                              ManifestError, "schema_version '1' is not supported"),
    "schema-version-missing": (lambda b, m: _write_raw(b, json.dumps({k: v for k, v in m.items() if k != "schema_version"})),
                               ManifestError, "schema_version None"),
    "missing-artifacts": (lambda b, m: _write_raw(b, json.dumps({k: v for k, v in m.items() if k != "artifacts"})),
                          ManifestError, "'artifacts' is a required property"),
    "missing-input-shape": (lambda b, m: _write_raw(b, json.dumps({**m, "input": {k: v for k, v in m["input"].items() if k != "shape"}})),
                            ManifestError, "invalid at input"),
    "no-manifest": (lambda b, m: None, ManifestError, "no manifest.json"),
    # found by `make fuzz`: a key with a line break made the message two lines long
    "control-characters-in-a-key": (lambda b, m: _write_raw(b, json.dumps({**m, "toolchain": {"a\nb\r\tc": None}})),
                                    ManifestError, "invalid at toolchain/'a\\nb\\r\\tc'"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_bad_manifest_is_refused(tmp_path, manifest, case):
    make, error, message = MANIFEST_CASES[case]
    manifest["artifacts"] = [_artifact(tmp_path)]
    make(tmp_path, manifest)
    import runtime_py

    with pytest.raises(error) as err:
        runtime_py.load(tmp_path)
    assert message in _one_line(err.value)


def _bundle_with(tmp_path, manifest, **entry_changes) -> Path:
    bundle = tmp_path / "b"
    bundle.mkdir()
    manifest["artifacts"] = [{**_artifact(bundle), **entry_changes}]
    mf.write(bundle, manifest)
    return bundle


@pytest.mark.parametrize("relpath", ["../outside.tflite", "sub/../../outside.tflite", "/etc/passwd",
                                     "C:/x.tflite", "link.tflite"])
def test_artifact_path_leaving_the_bundle_is_refused(tmp_path, manifest, relpath):
    """The schema refuses ../ and absolute paths; resolve() also refuses a symlink out."""
    (tmp_path / "outside.tflite").write_bytes(b"secret")
    bundle = _bundle_with(tmp_path, manifest)
    data = mf.read(bundle)
    data["artifacts"][0]["file"] = relpath
    _write_raw(bundle, json.dumps(data))
    (bundle / "link.tflite").symlink_to(tmp_path / "outside.tflite")
    import runtime_py

    for integrity in (True, False):
        with pytest.raises((ManifestError, IntegrityError)) as err:
            runtime_py.load(bundle, check_integrity=integrity)
        assert "inside the bundle" in _one_line(err.value) or "outside the bundle" in str(err.value)


def test_labels_file_leaving_the_bundle_is_refused(tmp_path, manifest):
    bundle = _bundle_with(tmp_path, manifest)
    data = mf.read(bundle)
    data["labels_file"] = "../labels.txt"
    _write_raw(bundle, json.dumps(data))
    import runtime_py

    with pytest.raises((ManifestError, IntegrityError), match="inside the bundle|outside the bundle"):
        runtime_py.load(bundle, check_integrity=False)


def test_sha256_mismatch_is_refused_by_default(tmp_path, manifest):
    bundle = _bundle_with(tmp_path, manifest, sha256="0" * 64)
    import runtime_py

    with pytest.raises(IntegrityError, match="does not match the sha256"):
        runtime_py.load(bundle)
    with pytest.raises(IntegrityError, match="does not match the sha256"):
        runtime_py.load(bundle / "m.tflite")       # a single artifact inside its bundle too


def test_missing_artifact_is_refused(tmp_path, manifest):
    bundle = _bundle_with(tmp_path, manifest)
    (bundle / "m.tflite").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        check_artifacts(bundle, mf.read(bundle))


# ---- images -------------------------------------------------------------------------------

def _png(path: Path, mode: str, size=(20, 12)) -> Path:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode).save(path)
    return path


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P", "LA", "1", "RGB"])
def test_any_image_mode_gives_the_model_tensor(tmp_path, mode):
    x = preprocess(_png(tmp_path / "x.png", mode), SPEC)
    assert x.shape == (1, 3, 8, 8) and x.dtype == np.float32 and np.isfinite(x).all()


def test_sixteen_bit_uses_the_full_range(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "w.png")
    x = preprocess(tmp_path / "w.png", {**SPEC, "normalize_in_graph": True})
    assert np.allclose(x, 1.0)


BAD_IMAGES = {
    "text-file": lambda p: p.write_text("hello, not a picture"),
    "zero-bytes": lambda p: p.write_bytes(b""),
    "truncated-png": lambda p: p.write_bytes(_png(p, "RGB", (64, 64)).read_bytes()[:200]),
    "png-header-only": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_unreadable_image_is_refused(tmp_path, case):
    path = tmp_path / "x.png"
    BAD_IMAGES[case](path)
    with pytest.raises(InputError, match="not a readable image"):
        preprocess(path, SPEC)


def test_missing_image_and_folder(tmp_path):
    with pytest.raises(InputError, match="no image file"):
        preprocess(tmp_path / "nope.png", SPEC)
    with pytest.raises(InputError, match="no image file"):
        preprocess(tmp_path, SPEC)


def _huge_png(path: Path, width: int, height: int) -> Path:
    """A valid greyscale PNG, streamed row by row (never held in memory)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    comp, row, parts = zlib.compressobj(1), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        fh.write(chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height", [(20000, 20000), (12500, 10000)])
def test_huge_image_is_refused_without_decoding(tmp_path, width, height):
    """400 Mpx (PIL's own bomb limit) and 125 Mpx (between our limit and PIL's 2x one):
    refused from the header, in a fresh process whose peak memory stays small."""
    path = _huge_png(tmp_path / "huge.png", width, height)
    code = ("import resource, sys\n"
            "from runtime_py.preprocess import preprocess, InputError\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    preprocess(sys.argv[1], {'shape': [1, 3, 8, 8], 'layout': 'NCHW'})\n"
            "except InputError as e:\n    print('refused', e)\n"
            "print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused" in proc.stdout and "downscale it first" in proc.stdout
    grew_kb = int(proc.stdout.split("grew_kb")[1])
    assert grew_kb < 50_000, f"peak memory grew by {grew_kb} kB"


# ---- tensors ------------------------------------------------------------------------------

BAD_TENSORS = {
    "wrong-shape": (np.zeros((1, 3, 9, 8), np.float32), "shape"),
    "wrong-rank": (np.zeros((3, 8), np.float32), "shape"),
    "int64": (np.zeros((1, 3, 8, 8), np.int64), "dtype"),
    "bool": (np.zeros((1, 3, 8, 8), bool), "dtype"),
    "nan": (np.full((1, 3, 8, 8), np.nan, np.float32), "NaN or Inf"),
    "inf": (np.full((1, 3, 8, 8), np.inf, np.float64), "NaN or Inf"),
    "uint8-wrong-channels": (np.zeros((8, 8, 5), np.uint8), "HxWxC"),
    "uint8-empty": (np.zeros((0, 8, 3), np.uint8), "no pixels"),
}


@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_bad_tensor_is_refused(case):
    x, message = BAD_TENSORS[case]
    with pytest.raises(InputError) as err:
        preprocess(x, SPEC)
    assert message in _one_line(err.value)


def test_float64_and_torch_tensors_are_accepted():
    import torch

    assert preprocess(np.zeros((3, 8, 8)), SPEC).dtype == np.float32
    assert preprocess(torch.zeros(1, 3, 8, 8), SPEC).shape == (1, 3, 8, 8)
