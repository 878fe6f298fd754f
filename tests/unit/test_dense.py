"""Dense postprocessing and pictures: class maps and scalar maps at the image's own size."""
import numpy as np
import pytest
from PIL import Image

from runtime_py.dense import heatmap, json_safe, patch_routes, segment, segment_lines
from runtime_py.errors import PocketError
from runtime_py.render import colormap, render


def _logits(class_map: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((1, classes, *class_map.shape), np.float32)
    for c in range(classes):
        out[0, c][class_map == c] = 1.0
    return out


def test_segment_maps_back_to_the_image_size_and_counts_areas():
    model_map = np.zeros((4, 4), np.uint8)
    model_map[:, 2:] = 2                 # right half is class 2
    post = segment({}, ["a", "b", "c"])
    result = post([_logits(model_map, 3)], (10, 6))      # a 10 wide, 6 high photo
    assert result["class_map"].shape == (6, 10) and result["size"] == [10, 6]
    assert result["model_size"] == [4, 4]
    assert (result["class_map"][:, :5] == 0).all() and (result["class_map"][:, 5:] == 2).all()
    assert [c["label"] for c in result["classes"]] == ["a", "c"]
    assert sum(c["area"] for c in result["classes"]) == pytest.approx(1.0)


def test_segment_without_image_size_keeps_the_model_size():
    result = segment({}, None)([_logits(np.eye(3, dtype=np.uint8), 2)])
    assert result["class_map"].shape == (3, 3) and result["label"] == "0"


def test_segment_reads_patch_routes():
    routes = np.array([[0, 1, 2, 2]], np.float32)
    post = segment({"patch_routes": {"output": 1, "patch": 2, "names": ["s", "m", "l"]}}, None)
    result = post([_logits(np.zeros((4, 4), np.uint8), 2), routes])
    np.testing.assert_array_equal(result["patch_routes"], [[0, 1], [2, 2]])
    assert result["route_names"] == ["s", "m", "l"]
    assert segment_lines(result)[-1] == "patch routes: 1 → s, 1 → m, 2 → l"
    with pytest.raises(PocketError, match="patch grid"):
        patch_routes(routes, (6, 6), 2)


def test_heatmap_resizes_bilinearly_and_reports_the_threshold_share():
    values = np.array([[[[0.0, 1.0], [0.0, 1.0]]]], np.float32)
    result = heatmap({"threshold": 0.5}, None)([values], (8, 8))
    assert result["map"].shape == (8, 8)
    assert 0.0 <= result["min"] < result["max"] <= 1.0
    assert result["above_threshold"] == pytest.approx(0.5)


def test_bad_shapes_say_what_was_expected():
    with pytest.raises(PocketError, match=r"\[1, C, H, W\]"):
        segment({}, None)([np.zeros((2, 3, 4, 4, 4), np.float32)])


def test_json_safe_drops_pixel_arrays():
    result = segment({}, None)([_logits(np.zeros((2, 2), np.uint8), 2)])
    safe = json_safe(result)
    assert "class_map" not in safe and safe["classes"][0]["area"] == 1.0


def test_render_puts_input_and_overlay_side_by_side_at_the_image_aspect():
    image = Image.new("RGB", (90, 30), (10, 200, 10))
    model_map = np.zeros((8, 8), np.uint8)
    model_map[:, 4:] = 1
    result = segment({}, ["left", "right"])([_logits(model_map, 2)], image.size)
    picture = render(image, result, {"kind": "segment", "palette": [[255, 0, 0], [0, 0, 255]], "alpha": 1.0},
                     ["left", "right"])
    assert picture.width >= 2 * 90 and picture.height > 30
    pixels = np.asarray(picture)
    assert tuple(pixels[15, 10]) == (10, 200, 10)          # the input, untouched
    assert tuple(pixels[15, 90 + 8 + 10]) == (255, 0, 0)    # overlay, left half is class 0
    assert tuple(pixels[15, 90 + 8 + 80]) == (0, 0, 255)    # right half is class 1


def test_render_refuses_kinds_without_a_picture():
    with pytest.raises(PocketError, match="--json"):
        render(Image.new("RGB", (4, 4)), {}, {"kind": "classify"})


def test_colormap_is_monotonic_in_brightness():
    ramp = colormap(np.linspace(0, 1, 50)[None], "magma")[0].astype(float)
    brightness = ramp @ [0.299, 0.587, 0.114]
    assert (np.diff(brightness) >= -1e-9).all()
