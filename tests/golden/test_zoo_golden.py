"""Every registered zoo model: committed weights vs its checked-in fixture, the fixture's
inputs vs today's data pipeline, and the held-out metric vs the model's card.

Regenerate a fixture with `python -m models.golden NAME` after retraining.
"""
import numpy as np
import pytest
import torch

from models.card import read_card
from models.golden import eager_outputs, fixture_path
from models.registry import get, names
from models.train import evaluate


ZOO = names()
# The card's number was measured on the same weights and data; only float summation order
# (thread count, kernels) may move it. A quarter point is far above that and far below
# what a broken preprocessing, a swapped weight file or a wrong split costs.
CARD_TOLERANCE_POINTS = 0.25


@pytest.fixture(scope="module", params=ZOO)
def zoo(request):
    spec = get(request.param)
    return spec, spec.load(), np.load(fixture_path(spec.name))


def test_every_model_has_weights_fixture_and_card():
    for name in ZOO:
        spec = get(name)
        assert spec.weights_path() is not None and spec.weights_path().is_file(), name
        assert fixture_path(name).is_file(), f"{name}: run python -m models.golden {name}"
        assert read_card(name) is not None, f"{name}: run python -m models.card {name}"


def test_fixture_inputs_are_todays_heldout_data(zoo):
    """A change in the data pipeline (split, generator, preprocessing) fails here, instead
    of being absorbed by a regenerated fixture."""
    spec, _, golden = zoo
    ev = spec.evaluation()
    n = len(golden["inputs"])
    np.testing.assert_allclose(ev.inputs[:n].numpy(), golden["inputs"], atol=1e-6)
    np.testing.assert_array_equal(ev.targets[:n].numpy(), golden["targets"])


def test_eager_outputs_match_fixture(zoo):
    spec, model, golden = zoo
    outputs = eager_outputs(model, torch.from_numpy(golden["inputs"]))
    assert len(outputs) == len(spec.outputs)
    for i, out in enumerate(outputs):
        if spec.outputs[i].exact:
            np.testing.assert_array_equal(out, golden[f"out{i}"])
        else:
            np.testing.assert_allclose(out, golden[f"out{i}"], atol=1e-4, rtol=1e-4)


def test_heldout_metric_matches_the_card(zoo):
    spec, model, _ = zoo
    card = read_card(spec.name)
    ev = spec.evaluation()
    assert len(ev.inputs) == card["heldout_samples"]
    measured = evaluate(model, spec, ev.inputs, ev.targets)[card["metric"]]
    recorded = card["committed"]["heldout"][card["metric"]]
    assert abs(measured - recorded) * 100 <= CARD_TOLERANCE_POINTS, (measured, recorded)
