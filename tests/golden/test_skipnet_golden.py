"""SkipNet-M committed weights: eager outputs vs the checked-in fixture, and a behaviour floor.

Regenerate the fixture with `python -m models.golden skipnet_m` after retraining.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from models import data
from models.registry import get
from models.train import evaluate

pytestmark = pytest.mark.golden

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "skipnet_m.npz"


@pytest.fixture(scope="module")
def model():
    return get("skipnet_m").load()


def test_fixture_inputs_are_the_heldout_preprocessing():
    """The fixture's inputs are today's preprocessing of the first held-out digits, so a
    change in data.py (split or preprocessing) is caught here, not silently absorbed."""
    golden = np.load(FIXTURE)
    inputs, targets = data.heldout_split()
    n = len(golden["inputs"])
    np.testing.assert_allclose(inputs[:n].numpy(), golden["inputs"], atol=1e-6)
    np.testing.assert_array_equal(targets[:n].numpy(), golden["targets"])


def test_eager_logits_match_fixture(model):
    golden = np.load(FIXTURE)
    with torch.no_grad():
        logits = model(torch.from_numpy(golden["inputs"])).numpy()
    np.testing.assert_allclose(logits, golden["logits"], atol=1e-4, rtol=1e-4)


def test_heldout_accuracy_floor(model):
    """Floor 0.97: the card reports ~98-99% for this recipe; 0.97 leaves room for
    1-thread vs multi-thread numeric drift but still fails on a broken model, wrong
    preprocessing or swapped weights (an untrained model scores ~0.10)."""
    ev = get("skipnet_m").evaluation()
    assert len(ev.inputs) == 1000 and ev.metric == "top1_accuracy"
    assert evaluate(model, ev.inputs, ev.targets) >= 0.97
