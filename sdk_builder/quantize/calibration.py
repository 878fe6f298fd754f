"""Calibration data for static quantization: the model's own, a folder of images, or noise."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from runtime_py.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
DEFAULT_SAMPLES = 128
NOISE_SAMPLES = 32


def from_folder(folder: Path, input_spec: dict, samples: int | None) -> Callable[[], list]:
    """Images of `folder` (sorted by name), preprocessed by the manifest's rules."""
    import torch

    from runtime_py.preprocess import image_to_tensor

    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"calibration folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"calibration folder {folder} holds no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = files[:samples or DEFAULT_SAMPLES]

    def load() -> list:
        return [torch.from_numpy(image_to_tensor(p, input_spec)) for p in files]

    return load


def from_spec(provider: Callable, samples: int | None) -> Callable[[], list]:
    """The model's own calibration provider, with an optional sample count."""
    return (lambda: provider(samples)) if samples else provider


def from_noise(shapes: list[tuple[int, ...]], samples: int | None) -> Callable[[], list]:
    """Seeded standard-normal inputs (a tensor per sample, a tuple of them for several
    inputs): keeps int8 builds possible for models without data, at the cost of accuracy
    (the manifest says so)."""
    import torch

    def load() -> list:
        rng = np.random.default_rng(0)
        cases = [tuple(torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in shapes)
                 for _ in range(samples or NOISE_SAMPLES)]
        return [c[0] for c in cases] if len(shapes) == 1 else cases

    return load


def choose(spec, folder: Path | None, samples: int | None) -> tuple[Callable, str]:
    """(calibration provider, a one-line description for the manifest)."""
    if samples is not None and samples < 1:
        raise UsageError("--calib-samples must be at least 1")
    if folder is not None:
        if spec.extra_inputs:
            raise UsageError(f"--calib-data gives images for the first input only, and the model "
                             f"takes {1 + len(spec.extra_inputs)} inputs: leave it out (int8 is "
                             "then calibrated on seeded noise) or add a calibration function to "
                             "a ModelSpec")
        provider = from_folder(folder, spec.input.manifest(), samples)
        return provider, f"images from {Path(folder).name}/ (up to {samples or DEFAULT_SAMPLES})"
    if spec.calibration is not None:
        return from_spec(spec.calibration, samples), "the model's calibration split"
    return from_noise(spec.input_shapes, samples), \
        "synthetic seeded noise (no calibration data given: pass --calib-data for real accuracy)"
