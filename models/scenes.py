"""Seeded procedural scenes for 6-class semantic segmentation.

Every scene is drawn from one integer seed through ``numpy.random.default_rng(seed)``
(PCG64) in pure numpy, so the same seed always gives the same image and mask and
nothing is downloaded or read from disk. ``render_scene(seed, size)`` returns an RGB
image (uint8, ``[size, size, 3]``) and a mask of class ids (uint8, ``[size, size]``);
any ``size >= 32`` works and textures are defined on a 128-pixel reference grid, so a
larger image shows the same scene at a finer resolution.

Classes (id, name: what it looks like):

- 0 ``sky``: a smooth linear colour gradient, top to bottom or diagonal, brightening
  towards the horizon; blue, overcast grey or dusk orange; almost no texture.
- 1 ``wall``: one flat colour with faint noise and, at most, a slight linear shading;
  beige, grey or painted in any hue; the lowest-entropy class.
- 2 ``water``: smooth low-frequency waves (two crossing sinusoids with a slow warp),
  sometimes with bright glints on the crests; blue, teal or grey; low-medium texture.
- 3 ``grass``: dense thin blades (1-2 px wide, 6-16 px long, leaning) in two layers,
  each blade its own shade, darker at the root; green or dry yellow; high entropy.
- 4 ``brick``: a staggered running-bond brick pattern with light or dark mortar lines,
  random brick height, aspect, mortar width, tilt (up to about 17 degrees) and phase,
  each brick its own shade; red, brown or grey; medium-high, structured entropy.
- 5 ``gravel``: two layers of round pebbles (a jittered grid of discs, shaded as if
  lit from the top left) in 3-5 related greys or browns over dark gaps; high entropy.

Colour ranges overlap on purpose (sky and water share blues and greys, walls share
beiges and reds with brick and blues with sky, grass and gravel share browns and
olive greens), so colour alone cannot separate the classes and texture is needed.
Texture entropy carries class information but does not decide it either: grass and
gravel are both high entropy, and each region draws its own contrast. Each region
draws its own base colour, texture scale, contrast, orientation and phase.

Layout: a scene has 3-7 regions. Half of the scenes start with a horizon, a tilted,
gently wavy line between 20% and 60% of the height, whose top region is sky with
probability 0.6 and otherwise a random class; the other half start with one full-frame
background region. Further regions are layered on top in random order as random
star-shaped polygons, tilted rectangles, rotated ellipses and wavy bands, each of a
random class. Region borders are sharp: every mask pixel carries exactly one class.
Class probabilities are tuned so that over many scenes every class covers a similar
share of pixels. Each scene finally gets a global brightness and contrast jitter, a
slight white-balance shift and mild Gaussian pixel noise (the mask is unaffected).

Splits: training uses seeds ``[0, n_train)`` from ``TRAIN_SEEDS = range(0, 1_000_000)``;
the held-out split uses seeds from ``HELDOUT_SEEDS = range(1_000_000, 2_000_000)``, so
the two never overlap; calibration data for quantization uses the first training
seeds only (``calibration_seeds(n) == train_seeds(n)``).
"""
from __future__ import annotations

import colorsys
import math
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

CLASSES: tuple[str, ...] = ("sky", "wall", "water", "grass", "brick", "gravel")
PALETTE: tuple[tuple[int, int, int], ...] = (
    (66, 135, 245),   # sky: blue
    (255, 214, 60),   # wall: yellow
    (0, 205, 205),    # water: cyan
    (50, 190, 50),    # grass: green
    (215, 45, 45),    # brick: red
    (165, 90, 225),   # gravel: purple
)
SKY, WALL, WATER, GRASS, BRICK, GRAVEL = range(6)
TRAIN_SEEDS = range(0, 1_000_000)
HELDOUT_SEEDS = range(1_000_000, 2_000_000)
REF_SIZE = 128
MIN_SIZE = 32

Rng = np.random.Generator
F32 = np.float32
# Per-class colour families: (hue0, hue1 in degrees, sat0, sat1, val0, val1, weight).
_FAMILIES: dict[int, tuple[tuple[float, ...], ...]] = {
    SKY: ((195, 230, .25, .75, .55, .92, .70), (0, 360, 0, .08, .55, .82, .20),
          (15, 45, .25, .60, .65, .95, .10)),
    WALL: ((15, 50, .05, .45, .45, .92, .50), (0, 360, 0, .08, .35, .90, .25),
           (0, 360, .20, .55, .35, .85, .25)),
    WATER: ((185, 225, .30, .80, .30, .80, .65), (140, 185, .25, .70, .25, .60, .25),
            (190, 220, .05, .20, .40, .75, .10)),
    GRASS: ((75, 130, .35, .85, .25, .70, .70), (40, 70, .35, .75, .40, .75, .30)),
    BRICK: ((0, 30, .35, .80, .35, .75, .70), (25, 45, .20, .55, .30, .70, .20),
            (0, 360, 0, .10, .35, .65, .10)),
    GRAVEL: ((20, 50, .05, .40, .30, .75, .60), (0, 360, 0, .08, .30, .80, .25),
             (60, 100, .20, .50, .30, .60, .15)),
}
# Class draw weights for regions that are not a sky-biased horizon top.
_CLASS_WEIGHTS = np.array([0.5, 1.0, 1.0, 1.0, 1.0, 1.0])
_P_HORIZON, _P_TOP_SKY = 0.5, 0.6


def _colour(rng: Rng, cls: int) -> np.ndarray:
    """A random base colour (RGB, 0..255 float32) from the class's colour families."""
    fams = _FAMILIES[cls]
    pick = rng.random() * sum(f[6] for f in fams)
    for fam in fams:
        pick -= fam[6]
        if pick <= 0:
            break
    h0, h1, s0, s1, v0, v1, _ = fam
    rgb = colorsys.hsv_to_rgb(rng.uniform(h0, h1) / 360 % 1.0, rng.uniform(s0, s1),
                              rng.uniform(v0, v1))
    return np.array(rgb, F32) * 255


def _noise(rng: Rng, n: int, sd: float) -> np.ndarray:
    """Per-pixel grey noise, shape [n, 1]."""
    return rng.standard_normal((n, 1), dtype=F32) * F32(sd)


def _rotate(rng: Rng, y: np.ndarray, x: np.ndarray, angle: float,
            scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotated, randomly shifted texture coordinates in reference pixels."""
    c, s = math.cos(angle), math.sin(angle)
    du, dv = rng.uniform(0, 512, 2)
    return ((x * c + y * s) / scale + du).astype(F32), ((y * c - x * s) / scale + dv).astype(F32)


def _sky(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    top = _colour(rng, SKY)
    bottom = top + (255 - top) * rng.uniform(0.2, 0.55)
    ang = rng.uniform(-0.7, 0.7)
    t = (y * math.cos(ang) + (x - size / 2) * math.sin(ang)) / size
    t = np.clip(t * rng.uniform(0.7, 1.4) + rng.uniform(-0.2, 0.2), 0, 1)[:, None]
    return top + t * (bottom - top) + _noise(rng, y.size, 1.2)


def _wall(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    base = _colour(rng, WALL)
    ang = rng.uniform(0, 2 * math.pi)
    shade = (x * math.cos(ang) + y * math.sin(ang)) / size * rng.uniform(0, 6)
    return base + shade[:, None] + _noise(rng, y.size, rng.uniform(0.5, 1.5))


def _water(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    base, s = _colour(rng, WATER), size / REF_SIZE
    lam = rng.uniform(10, 30)
    u, v = _rotate(rng, y, x, rng.uniform(-0.4, 0.4), s)
    warp = rng.uniform(0.5, 2.0) * np.sin(u * F32(2 * math.pi / (lam * rng.uniform(2, 5))))
    wave = np.sin(v * F32(2 * math.pi / lam) + warp)
    u2, v2 = _rotate(rng, y, x, rng.uniform(-1.0, 1.0), s)
    wave += rng.uniform(0.2, 0.6) * np.sin(v2 * F32(2 * math.pi / (lam * rng.uniform(0.3, 0.6))))
    out = base + (rng.uniform(5, 20) * wave)[:, None]
    if rng.random() < 0.35:
        glint = np.clip(wave - rng.uniform(0.9, 1.3), 0, None)
        out += (glint * rng.uniform(60, 160))[:, None]
    return out + _noise(rng, y.size, 1.5)


def _grass(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    base, s = _colour(rng, GRASS), size / REF_SIZE
    tab = rng.random((2, 64, 64), dtype=F32)
    shift = rng.random((2, 64), dtype=F32)
    shade = np.zeros(y.size, F32)
    for layer in range(2):
        bw, bh = rng.uniform(1.0, 2.2) * s, rng.uniform(6, 16) * s
        xs = x + rng.uniform(-0.5, 0.5) * y + rng.uniform(0, 64)
        col = np.floor(xs / bw).astype(np.int32) & 63
        f = y / bh + shift[layer, col]
        row = np.floor(f).astype(np.int32) & 63
        blade = tab[layer, row, col] * (1 - 0.35 * (f - np.floor(f)))
        shade = np.maximum(shade, blade * (1.0 - 0.15 * layer))
    con = rng.uniform(0.45, 0.85)
    tint = (tab[0, (row + 17) & 63, (col + 29) & 63] - 0.5)[:, None] * np.array([24, 14, -10], F32)
    out = base * (1 + con * (2 * shade - 1))[:, None] + tint
    return out + _noise(rng, y.size, 5)


def _brick(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    base, s = _colour(rng, BRICK), size / REF_SIZE
    bh = rng.uniform(6, 12)
    bw, mortar = bh * rng.uniform(1.8, 3.2), max(rng.uniform(0.8, 1.8), 0.7 / s)
    u, v = _rotate(rng, y, x, rng.uniform(-0.3, 0.3), s)
    row = np.floor(v / bh).astype(np.int32)
    u = u + (row & 1) * F32(bw * rng.uniform(0.3, 0.5))
    col = np.floor(u / bw).astype(np.int32)
    joint = ((v - row * F32(bh)) < mortar) | ((u - col * F32(bw)) < mortar)
    tab = rng.random((2, 32, 32), dtype=F32) - 0.5
    var = tab[0, row & 31, col & 31] * rng.uniform(0.3, 0.7)
    red = tab[1, row & 31, col & 31] * rng.uniform(0, 30)
    out = base * (1 + var)[:, None] + red[:, None] * np.array([1, 0.3, 0], F32)
    if rng.random() < 0.7:
        grey = rng.uniform(150, 215)
        mortar_col = np.array([grey, grey * 0.97, grey * 0.92], F32)
    else:
        mortar_col = base * rng.uniform(0.3, 0.5)
    out[joint] = mortar_col
    return out + _noise(rng, y.size, rng.uniform(3, 8))


def _gravel(rng: Rng, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    base, s = _colour(rng, GRAVEL), size / REF_SIZE
    k = int(rng.integers(3, 6))
    stones = base * rng.uniform(0.6, 1.35, (k, 1)) + rng.normal(0, 12, (k, 3))
    out = np.broadcast_to(base * rng.uniform(0.25, 0.5), (y.size, 3)).copy()
    cell = rng.uniform(4.5, 8)
    for scale in (rng.uniform(0.45, 0.7), 1.0):
        size_c = cell * scale
        u, v = _rotate(rng, y, x, rng.uniform(0, math.pi), s)
        gu, gv = np.floor(u / size_c).astype(np.int32), np.floor(v / size_c).astype(np.int32)
        tab = rng.random((4, 32, 32), dtype=F32)[:, gv & 31, gu & 31]
        r = (0.28 + 0.2 * tab[0]) * size_c
        du = u - (gu + 0.5) * size_c - (2 * tab[1] - 1) * (0.5 * size_c - r)
        dv = v - (gv + 0.5) * size_c - (2 * tab[2] - 1) * (0.5 * size_c - r)
        inside = du * du + dv * dv < r * r
        lit = 1 - 0.3 * (du + dv)[inside] / r[inside]
        idx = (tab[3][inside] * k).astype(np.int32)
        out[inside] = stones[idx] * lit[:, None]
    return out + _noise(rng, y.size, rng.uniform(3, 8))


_TEXTURES: tuple[Callable[[Rng, np.ndarray, np.ndarray, int], np.ndarray], ...] = (
    _sky, _wall, _water, _grass, _brick, _gravel)


def _pick_class(rng: Rng) -> int:
    """A region class drawn with ``_CLASS_WEIGHTS``."""
    cum = np.cumsum(_CLASS_WEIGHTS)
    return int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))


def _polygon(rng: Rng, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float,
             r: float) -> np.ndarray:
    """A random star-shaped polygon (3-8 vertices, or a tilted rectangle) as a boolean map."""
    if rng.random() < 0.35:
        a, b = r * rng.uniform(0.5, 1.0), r * rng.uniform(0.5, 1.0)
        ang = rng.uniform(-0.3, 0.3) + (math.pi / 2 if rng.random() < 0.5 else 0)
        corners = np.array([[-a, -b], [a, -b], [a, b], [-a, b]])
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        pts = corners @ rot.T + [cx, cy]
    else:
        n = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = r * rng.uniform(0.5, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    inside = np.zeros((yy.shape[0], xx.shape[1]), bool)
    for (x1, y1), (x2, y2) in zip(pts, np.roll(pts, -1, 0)):
        if y1 == y2:
            continue
        cross = (yy > y1) != (yy > y2)
        x_at = x1 + (yy - y1) * ((x2 - x1) / (y2 - y1))
        inside ^= cross & (xx < x_at)
    return inside


def _shape(rng: Rng, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    """One random region shape (polygon, ellipse or band) as a boolean map."""
    cy, cx = rng.uniform(-0.1, 1.1, 2) * size
    r = rng.uniform(0.15, 0.45) * size
    kind = rng.random()
    if kind < 0.45:
        return _polygon(rng, yy, xx, cy, cx, r)
    ang = rng.uniform(0, math.pi)
    c, s = math.cos(ang), math.sin(ang)
    along, across = (xx - cx) * c + (yy - cy) * s, (yy - cy) * c - (xx - cx) * s
    if kind < 0.75:
        a, b = r, r * rng.uniform(0.35, 1.0)
        return (along / a) ** 2 + (across / b) ** 2 <= 1
    width = rng.uniform(0.08, 0.3) * size
    wobble = rng.uniform(0, 0.08) * size * np.sin(along * (2 * math.pi / size) * rng.uniform(0.5, 2)
                                                    + rng.uniform(0, 2 * math.pi))
    return np.abs(across + wobble) < width / 2


def _layout(rng: Rng, size: int) -> tuple[np.ndarray, list[int]]:
    """Region-id map [size, size] and each region's class."""
    yy = (np.arange(size, dtype=F32) + 0.5)[:, None]
    xx = (np.arange(size, dtype=F32) + 0.5)[None, :]
    rid = np.zeros((size, size), np.uint8)
    n_regions = int(rng.integers(3, 8))
    if rng.random() < _P_HORIZON:
        top = SKY if rng.random() < _P_TOP_SKY else int(rng.integers(6))
        classes = [top, _pick_class(rng)]
        h0 = rng.uniform(0.2, 0.6) * size
        slope = rng.uniform(-0.3, 0.3)
        amp, period = rng.uniform(0, 0.06) * size, rng.uniform(0.5, 2) * size
        line = h0 + slope * (xx - size / 2) + amp * np.sin(xx * F32(2 * math.pi / period)
                                                          + F32(rng.uniform(0, 2 * math.pi)))
        rid[yy >= line] = 1
    else:
        classes = [_pick_class(rng)]
    while len(classes) < n_regions:
        rid[_shape(rng, yy, xx, size)] = len(classes)
        classes.append(_pick_class(rng))
    return rid, classes


def _global_effects(rng: Rng, img: np.ndarray) -> np.ndarray:
    """Scene-wide brightness/contrast/white-balance jitter and pixel noise, to uint8."""
    gain, bias = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
    balance = rng.uniform(0.92, 1.08, 3).astype(F32)
    img *= F32(gain) * balance
    img += F32(128 * (1 - gain) + bias) * balance
    img += rng.standard_normal(img.shape[:-1] + (1,), dtype=F32) * F32(rng.uniform(0.5, 2.5))
    np.rint(img, out=img)
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def render_scene(seed: int, size: int = REF_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (RGB image uint8 [size, size, 3], class-id mask uint8 [size, size])."""
    if size < MIN_SIZE:
        raise ValueError(f"scene size {size} is too small; use size >= {MIN_SIZE}")
    rng = np.random.default_rng(seed)
    rid, classes = _layout(rng, size)
    # One child stream per region and one for the global effects, so a scene looks the
    # same at every size although the number of pixel-noise draws depends on size.
    streams = [np.random.default_rng(int(k)) for k in rng.integers(0, 2**63, len(classes) + 1)]
    order = np.argsort(rid.ravel(), kind="stable")
    ends = np.cumsum(np.bincount(rid.ravel(), minlength=len(classes)))
    y, x = np.divmod(order, size)
    y, x = y.astype(F32), x.astype(F32)
    img = np.empty((size * size, 3), F32)
    for region, cls in enumerate(classes):
        lo, hi = (ends[region - 1] if region else 0), ends[region]
        if hi > lo:
            img[order[lo:hi]] = _TEXTURES[cls](streams[region], y[lo:hi], x[lo:hi], size)
    mask = np.asarray(classes, np.uint8)[rid]
    return _global_effects(streams[-1], img.reshape(size, size, 3)), mask


def batch(seeds: Iterable[int], size: int = REF_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Scenes for ``seeds``: images uint8 [N, size, size, 3], masks uint8 [N, size, size]."""
    seeds = list(seeds)
    images = np.empty((len(seeds), size, size, 3), np.uint8)
    masks = np.empty((len(seeds), size, size), np.uint8)
    for i, seed in enumerate(seeds):
        images[i], masks[i] = render_scene(seed, size)
    return images, masks


def _take(split: range, n: int, name: str) -> list[int]:
    if not 0 <= n <= len(split):
        raise ValueError(f"{name} split has {len(split)} seeds; ask for 0..{len(split)}, not {n}")
    return list(split[:n])


def train_seeds(n: int) -> list[int]:
    """The first ``n`` training seeds: ``[0, n)``."""
    return _take(TRAIN_SEEDS, n, "train")


def heldout_seeds(n: int) -> list[int]:
    """The first ``n`` held-out seeds: ``[1_000_000, 1_000_000 + n)``."""
    return _take(HELDOUT_SEEDS, n, "held-out")


def calibration_seeds(n: int) -> list[int]:
    """Seeds for quantization calibration: training seeds only, never held-out ones."""
    return train_seeds(n)


def patch_entropy(image: np.ndarray, patch: int = 16, bins: int = 8) -> np.ndarray:
    """Shannon entropy (bits) of each non-overlapping patch's grey-level histogram.

    Grey is 0.299R + 0.587G + 0.114B scaled to [0, 1] and binned into ``bins`` equal
    bins; the result has shape [H // patch, W // patch] (a ragged edge is dropped).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    hp, wp = image.shape[0] // patch, image.shape[1] // patch
    rgb = image[:hp * patch, :wp * patch].astype(np.float32) / 255
    grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    idx = np.clip((grey * bins).astype(np.int64), 0, bins - 1)
    idx = idx.reshape(hp, patch, wp, patch).transpose(0, 2, 1, 3).reshape(hp * wp, -1)
    offsets = np.arange(hp * wp)[:, None] * bins
    counts = np.bincount((idx + offsets).ravel(), minlength=hp * wp * bins)
    p = counts.reshape(hp, wp, bins) / float(patch * patch)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(-1)


def colourise(mask: np.ndarray) -> np.ndarray:
    """A class-id mask as an RGB image in ``PALETTE`` colours."""
    return np.asarray(PALETTE, np.uint8)[mask]


def preview(path: str | os.PathLike, seeds: Iterable[int], size: int = REF_SIZE,
            per_row: int = 8) -> Path:
    """Write a PNG grid: each row of scene images above their colourised masks, plus a legend."""
    from PIL import Image, ImageDraw

    images, masks = batch(seeds, size)
    n, gap, legend = len(images), 4, 20
    cols = min(per_row, max(n, 1))
    rows = -(-n // cols)
    cell = size + gap
    canvas = np.full((rows * 2 * cell + legend, max(cols * cell, 480), 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * 2 * cell, c * cell
        canvas[top:top + size, left:left + size] = images[i]
        canvas[top + cell:top + cell + size, left:left + size] = colourise(masks[i])
    pic = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pic)
    x = 2
    for name, colour in zip(CLASSES, PALETTE):
        y = canvas.shape[0] - legend + 4
        draw.rectangle([x, y, x + 12, y + 12], fill=colour)
        draw.text((x + 16, y), name, fill=(0, 0, 0))
        x += 16 + 8 * len(name) + 10
    out = Path(path)
    pic.save(out)
    return out
