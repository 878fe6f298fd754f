"""Turn an image (or a ready tensor) into the model's input, as the manifest says.

The same rules are what the Android and iOS demos implement: turn the picture upright
(EXIF orientation), convert to the colour order, resize to H x W bilinearly, map 0..255
onto `range`, then (x - mean) / std unless the graph normalises itself, then lay out as
NCHW or NHWC with a batch of 1.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from runtime_py.errors import PocketError, one_line

MAX_IMAGE_PIXELS = 100_000_000   # refuse decompression bombs before decoding
EXIF_ORIENTATION = 0x0112


class InputError(PocketError):
    """An input that cannot be turned into the model's tensor."""


def input_hw(spec: dict) -> tuple[int, int, int]:
    """(height, width, channels) of the input spec."""
    shape = spec["shape"]
    if spec["layout"] == "NCHW":
        return shape[2], shape[3], shape[1]
    return shape[1], shape[2], shape[3]


def open_image(x: Any):
    """An image path, PIL image or uint8 array as an upright PIL image (EXIF orientation
    applied); InputError for anything that is not a readable picture."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    if isinstance(x, Image.Image):
        return _upright(x, own=False)
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (1, 3, 4)):
            raise InputError(f"an image array must be HxW or HxWxC (C in 1, 3, 4) uint8; got "
                             f"{x.dtype} {x.shape}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"the image array {x.shape} has no pixels")
        return Image.fromarray(x[:, :, 0] if x.ndim == 3 and x.shape[2] == 1 else x)
    path = Path(x)
    if not path.is_file():
        raise InputError(f"no image file at {path}")
    try:
        image = Image.open(path)          # reads the header only
        if image.width * image.height > MAX_IMAGE_PIXELS:   # PIL itself only refuses above 2x
            raise Image.DecompressionBombError("too many pixels")
        image.load()
    except Image.DecompressionBombError:
        raise InputError(f"{path} is larger than {MAX_IMAGE_PIXELS:,} pixels; downscale it first") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as exc:
        raise InputError(f"{path} is not a readable image ({one_line(exc, 120)})") from None
    if image.width == 0 or image.height == 0:
        raise InputError(f"{path} has no pixels")
    return _upright(image, own=True)


def _upright(image, own: bool):
    """The picture as a gallery shows it: cameras store pixels sideways plus an EXIF
    Orientation tag (a damaged tag is ignored, not an error). An image we opened is turned
    in place (no second copy of a large photo); the caller's own image is left untouched."""
    import warnings

    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # Pillow's "Corrupt EXIF data" notes
            if own:
                ImageOps.exif_transpose(image, in_place=True)
                return image
            if image.getexif().get(EXIF_ORIENTATION, 1) == 1:
                return image     # already upright: no copy (Session.run and pocket run pass one)
            return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        return image


def _to_colour(image, color: str) -> np.ndarray:
    """HxWxC uint8 in the manifest's colour order (C = 1 for GRAY)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        from PIL import Image

        # 16-bit and 32-bit integer images are read as 0..65535; float images as 0..255.
        scale = 1.0 if image.mode == "F" else 255.0 / 65535.0
        arr = np.asarray(image, dtype=np.float64) * scale
        image = Image.fromarray(np.rint(arr).clip(0, 255).astype(np.uint8))
    if color == "GRAY":
        return np.asarray(image.convert("L"))[:, :, None]
    rgb = np.asarray(image.convert("RGB"))
    return rgb[:, :, ::-1] if color == "BGR" else rgb


def image_to_tensor(x: Any, spec: dict) -> np.ndarray:
    """An image path, PIL image or uint8 array -> float32 tensor of spec['shape']."""
    from PIL import Image

    height, width, _ = input_hw(spec)
    image = open_image(x)
    if image.size != (width, height):
        if image.mode not in ("L", "RGB", "RGBA"):
            image = Image.fromarray(_to_colour(image, "RGB"))
        image = image.resize((width, height), Image.BILINEAR)
    pixels = _to_colour(image, spec["color"]).astype(np.float32)
    low, high = spec["range"]
    tensor = pixels * np.float32((high - low) / 255.0) + np.float32(low)
    if not spec["normalize_in_graph"]:
        tensor = (tensor - np.asarray(spec["mean"], np.float32)) / np.asarray(spec["std"], np.float32)
    if spec["layout"] == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[None], dtype=np.float32)


def _check_finite(x: np.ndarray) -> None:
    """InputError on NaN or Inf. The sum of squares is finite exactly when every element is,
    unless it overflows (|x| > ~1e19): then the element-wise check decides. One BLAS call
    instead of two ufuncs and a temporary: cheaper next to a sub-millisecond model."""
    if not math.isfinite(np.vdot(x, x)) and not np.isfinite(x).all():
        raise InputError("input tensor contains NaN or Inf")


def check_tensor(x: Any, spec: dict) -> np.ndarray:
    """A ready tensor (numpy or torch) checked against the input spec; batch dim optional."""
    shape = tuple(spec["shape"])
    if type(x) is np.ndarray and x.dtype == np.float32 and x.shape == shape and x.flags.c_contiguous:
        _check_finite(x)                  # the usual case, kept to a few checks per call
        return x
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.shape == shape[1:]:
        x = x[None]
    if x.shape != shape:
        raise InputError(f"input tensor has shape {tuple(x.shape)}; the model takes {shape}")
    if x.dtype != np.float32:
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"input tensor has dtype {x.dtype}; the model takes float32 "
                             "(pass an image, or a float32 tensor already preprocessed)")
        x = x.astype(np.float32)
    x = np.ascontiguousarray(x)
    _check_finite(x)
    return x


def is_ready_tensor(x: Any) -> bool:
    """True for float arrays/tensors (preprocessed), False for images."""
    if hasattr(x, "detach"):
        return True
    return isinstance(x, np.ndarray) and x.dtype != np.uint8


def preprocess(x: Any, spec: dict) -> np.ndarray:
    """Any accepted input -> the model's float32 input tensor."""
    return check_tensor(x, spec) if is_ready_tensor(x) else image_to_tensor(x, spec)
