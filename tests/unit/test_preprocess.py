import numpy as np
import pytest
from PIL import Image

from runtime_py.preprocess import InputError, preprocess


SPEC = {"shape": [1, 3, 4, 4], "layout": "NCHW", "color": "RGB", "range": [0.0, 1.0],
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "normalize_in_graph": False}


def test_white_pixel_maps_through_range_mean_and_std():
    out = preprocess(np.full((4, 4, 3), 255, np.uint8), SPEC)
    assert out.shape == (1, 3, 4, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, (1.0 - 0.5) / 0.25)


def test_channels_keep_their_order_in_nchw():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # pure red
    out = preprocess(img, SPEC)
    np.testing.assert_allclose(out[0, 0], 2.0)
    np.testing.assert_allclose(out[0, 1:], -2.0)


def test_bgr_and_nhwc_layout():
    spec = dict(SPEC, layout="NHWC", color="BGR", shape=[1, 4, 4, 3])
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255
    out = preprocess(img, spec)
    assert out.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(out[0, :, :, 2], 2.0)


def test_resize_is_pil_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(img).resize((4, 4), Image.BILINEAR), np.float32)
    spec = dict(SPEC, mean=[0, 0, 0], std=[1, 1, 1], range=[0, 255])
    np.testing.assert_allclose(preprocess(img, spec)[0].transpose(1, 2, 0), want, atol=1e-4)


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_other_image_modes_become_rgb(tmp_path, mode):
    path = tmp_path / "x.png"
    Image.new(mode, (6, 6)).save(path)
    assert preprocess(str(path), SPEC).shape == (1, 3, 4, 4)


def test_grey_spec_takes_one_channel():
    spec = dict(SPEC, color="GRAY", shape=[1, 1, 4, 4], mean=[0.5], std=[0.25])
    assert preprocess(np.zeros((4, 4, 3), np.uint8), spec).shape == (1, 1, 4, 4)


def test_ready_tensor_gets_a_batch_dimension():
    assert preprocess(np.zeros((3, 4, 4), np.float32), SPEC).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((1, 3, 5, 5), np.float32), "shape"),
    (np.full((1, 3, 4, 4), np.nan, np.float32), "NaN"),
    (np.zeros((1, 3, 4, 4), np.int32), "dtype int32"),
])
def test_bad_tensors_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        preprocess(bad, SPEC)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 17, 47])
def test_one_non_finite_value_anywhere_is_refused(bad, where):
    x = np.random.default_rng(where).standard_normal((1, 3, 4, 4)).astype(np.float32)
    x.flat[where] = bad
    with pytest.raises(InputError, match="NaN or Inf"):
        preprocess(x, SPEC)


def test_huge_finite_values_are_accepted():
    """Their sum of squares overflows float32, which must not be mistaken for an Inf."""
    x = np.full((1, 3, 4, 4), 1e30, np.float32)
    assert np.array_equal(preprocess(x, SPEC), x)


def test_not_an_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"definitely not a png")
    with pytest.raises(InputError, match="not a readable image"):
        preprocess(str(path), SPEC)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no image file"):
        preprocess(str(tmp_path / "missing.png"), SPEC)


def test_exif_orientation_is_applied_as_a_phone_gallery_shows_the_photo(tmp_path):
    """A camera stores pixels sideways plus an EXIF Orientation tag; the model must get the
    upright picture (tag 6: rotate 90 degrees clockwise to display)."""
    from PIL import Image

    upright = np.zeros((4, 4, 3), np.uint8)
    upright[0, :, 0] = 255                               # a red top row
    stored = Image.fromarray(upright).rotate(90)        # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "photo.png", exif=exif)
    want = preprocess(upright, SPEC)
    np.testing.assert_array_equal(preprocess(str(tmp_path / "photo.png"), SPEC), want)
    np.testing.assert_array_equal(preprocess(Image.open(tmp_path / "photo.png"), SPEC), want)
