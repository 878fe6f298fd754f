"""Procedural segmentation scenes: determinism, splits, balance, entropy and colour cues."""
import numpy as np
import pytest

from models import scenes

N_SCENES = 50
FLAT = (scenes.SKY, scenes.WALL)
TEXTURED = (scenes.GRASS, scenes.BRICK, scenes.GRAVEL)


@pytest.fixture(scope="module")
def train50() -> tuple[np.ndarray, np.ndarray]:
    return scenes.batch(scenes.train_seeds(N_SCENES))


def _pure_patch_entropy(images: np.ndarray, masks: np.ndarray, patch: int = 16):
    """Entropies and class ids of all patches that hold a single class."""
    ents, labels = [], []
    for image, mask in zip(images, masks):
        h, w = mask.shape[0] // patch, mask.shape[1] // patch
        tiles = mask[:h * patch, :w * patch].reshape(h, patch, w, patch).transpose(0, 2, 1, 3)
        tiles = tiles.reshape(h, w, -1)
        pure = (tiles == tiles[..., :1]).all(-1)
        ents.append(scenes.patch_entropy(image, patch)[pure])
        labels.append(tiles[..., 0][pure])
    return np.concatenate(ents), np.concatenate(labels)


def test_same_seed_gives_identical_bytes():
    img_a, mask_a = scenes.render_scene(123)
    img_b, mask_b = scenes.render_scene(123)
    assert img_a.tobytes() == img_b.tobytes() and mask_a.tobytes() == mask_b.tobytes()
    images, masks = scenes.batch([5, 123])
    assert images[1].tobytes() == img_a.tobytes() and masks[1].tobytes() == mask_a.tobytes()


def test_different_seeds_differ():
    images, masks = scenes.batch(range(10))
    assert len({im.tobytes() for im in images}) == 10
    assert len({m.tobytes() for m in masks}) == 10


def test_train_and_heldout_seeds_are_disjoint():
    assert scenes.TRAIN_SEEDS.stop <= scenes.HELDOUT_SEEDS.start
    train, held = scenes.train_seeds(5000), scenes.heldout_seeds(5000)
    assert train == list(range(5000)) and held[0] == 1_000_000
    assert not set(train) & set(held)
    assert set(scenes.calibration_seeds(64)) <= set(train)
    for bad in (-1, len(scenes.TRAIN_SEEDS) + 1):
        with pytest.raises(ValueError):
            scenes.train_seeds(bad)


def test_masks_hold_valid_ids_and_classes_are_balanced(train50):
    images, masks = train50
    assert images.shape == (N_SCENES, 128, 128, 3) and images.dtype == np.uint8
    assert masks.shape == (N_SCENES, 128, 128) and masks.dtype == np.uint8
    assert masks.max() < len(scenes.CLASSES) == len(scenes.PALETTE) == 6
    assert len(set(scenes.PALETTE)) == 6
    shares = np.bincount(masks.ravel(), minlength=6) / masks.size
    assert shares.min() > 0.06 and shares.max() < 0.35, shares
    assert shares.max() / shares.min() < 3, shares


def test_scenes_have_several_regions(train50):
    _, masks = train50
    per_scene = [len(np.unique(m)) for m in masks]
    assert min(per_scene) >= 1 and np.mean(per_scene) >= 2.5


def test_textured_classes_have_higher_patch_entropy(train50):
    ents, labels = _pure_patch_entropy(*train50)
    mean = {c: ents[labels == c].mean() for c in range(6)}
    assert all((labels == c).sum() >= 30 for c in range(6))
    assert min(mean[c] for c in TEXTURED) > max(mean[c] for c in FLAT) + 0.5, mean
    assert max(mean[c] for c in FLAT) < mean[scenes.WATER] < max(mean[c] for c in TEXTURED)


def test_entropy_alone_does_not_decide_the_class(train50):
    ents, labels = _pure_patch_entropy(*train50)
    means = np.array([ents[labels == c].mean() for c in range(6)])
    pred = np.abs(ents[:, None] - means[None]).argmin(1)
    assert (pred == labels).mean() < 0.7


def test_colour_alone_does_not_decide_the_class(train50):
    images, masks = train50
    pixels = images.reshape(-1, 3)[::5].astype(np.float32)
    labels = masks.ravel()[::5]
    means = np.stack([pixels[labels == c].mean(0) for c in range(6)])
    pred = ((pixels[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == labels).mean() < 0.8


@pytest.mark.parametrize("size", [32, 96, 97, 160])
def test_other_sizes_work(size):
    images, masks = scenes.batch(range(4), size)
    assert images.shape == (4, size, size, 3) and masks.shape == (4, size, size)
    assert masks.max() < 6 and len(np.unique(masks)) >= 3


def test_layout_is_the_same_at_every_size():
    _, small = scenes.render_scene(42, 128)
    _, large = scenes.render_scene(42, 256)
    assert (large[::2, ::2] == small).mean() > 0.95


def test_too_small_size_is_rejected():
    with pytest.raises(ValueError, match="size"):
        scenes.render_scene(0, 31)


def test_patch_entropy_known_values():
    flat = np.full((64, 48, 3), 100, np.uint8)
    assert scenes.patch_entropy(flat).shape == (4, 3)
    assert np.allclose(scenes.patch_entropy(flat), 0)
    halves = flat.copy()
    halves[:, ::2] = 255
    assert np.allclose(scenes.patch_entropy(halves), 1.0)
    levels = np.repeat((np.arange(16) * 16 + 8).astype(np.uint8), 16)
    ramp = np.repeat(levels.reshape(16, 16)[..., None], 3, -1)
    assert np.isclose(scenes.patch_entropy(ramp, patch=16, bins=8)[0, 0], 3.0)
    assert scenes.patch_entropy(np.zeros((100, 100, 3), np.uint8)).shape == (6, 6)


def test_preview_writes_a_png_grid(tmp_path):
    from PIL import Image

    out = scenes.preview(tmp_path / "grid.png", range(3), size=64, per_row=2)
    with Image.open(out) as pic:
        assert pic.format == "PNG" and pic.size[1] == 2 * 2 * (64 + 4) + 20
        grid = np.asarray(pic.convert("RGB"))
    assert (grid[68:132, :64] == scenes.colourise(scenes.render_scene(0, 64)[1])).all()
