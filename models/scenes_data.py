"""The procedural-scenes DataSpec (models.scenes) for the zoo's segmentation models:
2,400 train scenes (seeds 0..2399), 300 held-out scenes (seeds 1,000,000..1,000,299), at
128x128, preprocessed exactly as runtime_py does with a 128x128 RGB image file."""
from __future__ import annotations

import functools

import numpy as np
import torch

from models import scenes
from models.spec import DataSpec

SIZE = 128
N_TRAIN, N_HELDOUT = 2400, 300
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W], the runtime's arithmetic: x * (1/255),
    then (x - mean) / std per channel, all in float32."""
    x = images.astype(np.float32) * np.float32(1.0 / 255.0) + np.float32(0.0)
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@functools.lru_cache(maxsize=2)
def _split(which: str) -> tuple[torch.Tensor, torch.Tensor]:
    seeds = scenes.train_seeds(N_TRAIN) if which == "train" else scenes.heldout_seeds(N_HELDOUT)
    images, masks = scenes.batch(seeds, SIZE)
    return to_tensor(images), torch.from_numpy(masks)


def train_split() -> tuple[torch.Tensor, torch.Tensor]:
    """Train images [2400, 3, 128, 128] (normalised) and masks [2400, 128, 128] (uint8 ids)."""
    return _split("train")


def heldout_split() -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out images [300, 3, 128, 128] and masks [300, 128, 128]; seeds never trained on."""
    return _split("heldout")


def flip(images: torch.Tensor, masks: torch.Tensor,
         generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded horizontal flip of half the batch (image and mask together)."""
    chosen = torch.rand(len(images), generator=generator) < 0.5
    images, masks = images.clone(), masks.clone()
    images[chosen] = images[chosen].flip(-1)
    masks[chosen] = masks[chosen].flip(-1)
    return images, masks


def _description() -> str:
    body = scenes.__doc__.split("\n\n", 1)[1].strip()
    return (f"Procedural scenes from `models/scenes.py`, generated on the fly from integer seeds "
            f"(no download). {N_TRAIN:,} train scenes (seeds 0–{N_TRAIN - 1}) and {N_HELDOUT} "
            f"held-out scenes (seeds 1,000,000–{1_000_000 + N_HELDOUT - 1:,}, never used in "
            "training); calibration uses the first train scenes. Training flips half of each "
            "batch horizontally (seeded).\n\n" + body)


SCENES6 = DataSpec(
    train=train_split,
    heldout=heldout_split,
    augment=flip,
    description=_description(),
    preprocessing=("128×128 RGB image (runtime_py resizes other sizes bilinearly to 128×128, "
                   "aspect not kept, and maps the class map back to the image's size with "
                   "nearest-neighbour) → x / 255 → (x − 0.5) / 0.25 per channel, NCHW float32."),
)
