"""Property-based tests (hypothesis) of the manifest reader, path resolution, image decoding
and preprocessing. Bounded for `make test`; `make fuzz` runs them with HYPOTHESIS_PROFILE=fuzz."""
from __future__ import annotations

import copy
import io
import json
import os
import posixpath

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime_py import manifest as mf
from runtime_py.errors import IntegrityError, PocketError
from runtime_py.preprocess import preprocess
from tests.conftest import _MANIFEST


settings.register_profile("default", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)


def _mutate(manifest: dict, data) -> dict:
    """Replace, delete or add one value somewhere in a valid manifest."""
    m = copy.deepcopy(manifest)
    node = m
    for _ in range(data.draw(st.integers(0, 3))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if not isinstance(node[key], (dict, list)) or not node[key]:
            break
        node = node[key]
    if isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node)))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = data.draw(json_values)
        elif action == "delete":
            del node[key]
        else:
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(json_values)
    elif isinstance(node, list) and node:
        node[data.draw(st.integers(0, len(node) - 1))] = data.draw(json_values)
    return m


@given(data=st.data())
def test_manifest_reader_mutated_manifests(tmp_path_factory, data):
    bundle = tmp_path_factory.mktemp("m")
    m = _mutate(_MANIFEST, data)
    (bundle / "manifest.json").write_text(json.dumps(m))
    try:
        got = mf.read(bundle)
    except mf.ManifestError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert got["schema_version"] == mf.SCHEMA_VERSION


@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_manifest_reader_random_bytes(tmp_path_factory, raw):
    bundle = tmp_path_factory.mktemp("m")
    (bundle / "manifest.json").write_bytes(raw)
    with pytest.raises(mf.ManifestError):
        mf.read(bundle)


def _leaves_the_bundle(relpath: str) -> bool:
    """The oracle, from the text alone (the bundle holds no symlinks): an absolute path, or one
    whose normal form climbs above the bundle folder."""
    normal = posixpath.normpath(relpath)
    return relpath.startswith("/") or normal == ".." or normal.startswith("../")


@given(parts=st.lists(st.sampled_from(["..", ".", "a", "b.pte", "", "/", "//", "\\\\", "~", "C:"]),
                      min_size=1, max_size=6))
@example(parts=["b.pte"]).via("a plain file name")
@example(parts=["a", "..", "a", "b.pte"]).via("a detour that stays inside")
@example(parts=["a", "..", "..", "b.pte"]).via("a detour that leaves")
@example(parts=["", "b.pte"]).via("an absolute path")
def test_resolve_keeps_inside_paths_and_refuses_only_the_ones_leaving(tmp_path_factory, parts):
    bundle = tmp_path_factory.mktemp("b")
    relpath = "/".join(parts)
    if _leaves_the_bundle(relpath):
        with pytest.raises(IntegrityError, match="outside the bundle") as refused:
            mf.resolve(bundle, relpath)
        assert "\n" not in str(refused.value)
    else:                           # the path it names, inside the bundle (or the bundle itself)
        assert mf.resolve(bundle, relpath) == bundle.resolve() / posixpath.normpath(relpath)


SPECS = st.fixed_dictionaries({
    "layout": st.sampled_from(["NCHW", "NHWC"]), "color": st.sampled_from(["RGB", "BGR", "GRAY"]),
    "hw": st.tuples(st.integers(1, 40), st.integers(1, 40)),
    "range": st.sampled_from([[0.0, 1.0], [-1.0, 1.0], [0.0, 255.0]]),
    "normalize_in_graph": st.booleans()})


def _spec(s: dict) -> dict:
    c = 1 if s["color"] == "GRAY" else 3
    h, w = s["hw"]
    shape = [1, c, h, w] if s["layout"] == "NCHW" else [1, h, w, c]
    return {"shape": shape, "layout": s["layout"], "color": s["color"], "range": s["range"],
            "mean": [0.5] * c, "std": [0.25] * c, "normalize_in_graph": s["normalize_in_graph"]}


@given(s=SPECS, h=st.integers(1, 64), w=st.integers(1, 64), c=st.sampled_from([None, 1, 3, 4]),
       seed=st.integers(0, 2**16))
def test_preprocess_any_uint8_image_gives_exactly_the_model_tensor(s, h, w, c, seed):
    spec = _spec(s)
    shape = (h, w) if c is None else (h, w, c)
    img = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    x = preprocess(img, spec)
    assert x.shape == tuple(spec["shape"]) and x.dtype == np.float32 and np.isfinite(x).all()
    if spec["normalize_in_graph"]:
        low, high = spec["range"]
        assert x.min() >= low - 1e-4 and x.max() <= high + 1e-4


@given(s=SPECS, fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]),
       mode=st.sampled_from(["L", "RGB", "RGBA", "P", "LA", "I;16", "1", "CMYK"]),
       h=st.integers(1, 48), w=st.integers(1, 48), cut=st.none() | st.integers(0, 400),
       flips=st.lists(st.integers(0, 10_000), max_size=8), orientation=st.none() | st.integers(0, 9))
def test_decoding_encoded_images_whole_truncated_or_damaged(tmp_path_factory, s, fmt, mode, h, w, cut,
                                                           flips, orientation):
    from PIL import Image

    spec = _spec(s)
    rng = np.random.default_rng(h * 100 + w)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    img = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16)) if mode == "I;16" else img.convert(mode)
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:                  # camera photos: pixels sideways + a tag
        exif[0x0112] = orientation
    try:
        img.save(buf, format=fmt, **({"exif": exif} if orientation is not None else {}))
    except (OSError, ValueError, KeyError, TypeError):
        return                                   # this format cannot store this mode
    data = bytearray(buf.getvalue())
    for f in flips:
        if data:
            data[f % len(data)] ^= 0x5A
    if cut is not None:
        data = data[:cut]
    path = tmp_path_factory.mktemp("img") / f"x.{fmt.lower()}"
    path.write_bytes(bytes(data))
    try:
        x = preprocess(path, spec)
    except PocketError as exc:
        assert "\n" not in str(exc)
    else:
        assert x.shape == tuple(spec["shape"]) and x.dtype == np.float32 and np.isfinite(x).all()


@given(shape=st.lists(st.integers(0, 9), min_size=0, max_size=5),
       dtype=st.sampled_from(["float32", "float64", "float16", "int32", "int64", "bool", "complex64"]),
       fill=st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf, 1e30]))
def test_tensor_checks(shape, dtype, fill):
    spec = _spec({"layout": "NCHW", "color": "RGB", "hw": (8, 8), "range": [0.0, 1.0],
                  "normalize_in_graph": False})
    with np.errstate(all="ignore"):
        x = np.full(shape, fill).astype(dtype)
    try:
        y = preprocess(x, spec)
    except PocketError as exc:
        assert "\n" not in str(exc)
    else:
        assert y.shape == (1, 3, 8, 8) and y.dtype == np.float32 and np.isfinite(y).all()
