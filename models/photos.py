"""Real photographs that ship inside scikit-image, for model cards: no download.

Some carry a known answer for the scene classes: scikit-image's `brick`, `grass` and
`gravel` are grey close-up photos of exactly those materials, so the share of pixels a
segmentation model labels as that class is a small real-photo check. The colour photos
(astronaut, coffee, chelsea, rocket) have no ground truth: cards show them as pictures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DISPLAY_HEIGHT = 200          # photos are shown (and segmented) at this height on a sheet
MATERIAL_PHOTOS = {"brick": "brick", "grass": "grass", "gravel": "gravel"}   # photo -> class name


def load_photo(name: str) -> np.ndarray:
    """A scikit-image photo as uint8 HxWx3 RGB (grey photos repeated over 3 channels)."""
    from skimage import data

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3].astype(np.uint8))


def segment_photo(model, manifest_input: dict, postprocess: dict, labels: list[str],
                  image: np.ndarray) -> dict:
    """Eager PyTorch through runtime_py's own pre- and post-processing, at the photo's size."""
    import torch

    from runtime_py.postprocess import get_postprocessor
    from runtime_py.preprocess import image_to_tensor

    tensor = torch.from_numpy(image_to_tensor(image, manifest_input))
    with torch.no_grad():
        out = model(tensor)
    outputs = [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]
    return get_postprocessor(postprocess["kind"])(postprocess, labels)(outputs, (image.shape[1], image.shape[0]))


def material_check(model, manifest_input: dict, postprocess: dict, labels: list[str]) -> dict:
    """{photo: share of its pixels labelled as its material} for brick, grass, gravel."""
    shares = {}
    for photo, cls in MATERIAL_PHOTOS.items():
        result = segment_photo(model, manifest_input, postprocess, labels, load_photo(photo))
        areas = {c["label"]: c["area"] for c in result["classes"]}
        shares[photo] = {"correct_share": areas.get(cls, 0.0), "dominant": result["label"]}
    return shares


def photo_sheet(path: Path, model, manifest_input: dict, postprocess: dict,
                labels: list[str], names: tuple[str, ...]) -> Path:
    """One picture per photo (input | result side by side), stacked into one PNG."""
    from PIL import Image

    from runtime_py.render import render

    pictures = []
    for name in names:
        photo = Image.fromarray(load_photo(name))
        photo = photo.resize((round(photo.width * DISPLAY_HEIGHT / photo.height), DISPLAY_HEIGHT),
                             Image.BILINEAR)
        result = segment_photo(model, manifest_input, postprocess, labels, np.asarray(photo))
        pictures.append(render(photo, result, postprocess, labels))
    sheet = Image.new("RGB", (max(p.width for p in pictures), sum(p.height + 6 for p in pictures)), "white")
    y = 0
    for picture in pictures:
        sheet.paste(picture, (0, y))
        y += picture.height + 6
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88) if path.suffix.lower() in (".jpg", ".jpeg") else sheet.save(path)
    return path
