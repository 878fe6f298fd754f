"""The training entry point runs a few steps for every zoo model, from its spec alone
(training itself never runs in the suite: the committed weights are its result)."""
import pytest
import torch

from models.registry import get, names
from models.train import train, training_recipe
from models.weights_io import load_weights


TRAINABLE = [n for n in names() if get(n).training is not None]


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_few_steps_change_the_weights_and_write_them(name, tmp_path):
    spec = get(name)
    recipe = training_recipe(spec, epochs=1, batch_size=4, max_steps=2)
    out = tmp_path / f"{name}.safetensors"
    lines = []
    result = train(name, recipe, out, log=lines.append)
    assert result["steps"] == 2 and out.is_file()
    assert result["metric"] == spec.task_row.metric and 0.0 <= result["headline"] <= 1.0
    torch.manual_seed(recipe.seed)               # train() seeds the same fresh init
    fresh = spec.build().state_dict()
    trained = load_weights(spec.build(), out).state_dict()
    changed = [k for k in fresh if k.endswith("weight") and not torch.equal(fresh[k], trained[k])]
    assert len(changed) >= len([k for k in fresh if k.endswith("weight")]) // 2
    assert any("held-out" in line for line in lines)
