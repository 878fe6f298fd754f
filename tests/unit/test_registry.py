"""Registry: discovery, duplicates, did-you-mean, and the SkipNet-M spec."""
import pytest

from models import registry
from models.registry import RegistryError, get, names, register
from models.spec import ModelSpec


def test_names_contains_skipnet_m():
    assert "skipnet_m" in names()


def test_duplicate_registration_raises():
    names()  # make sure discovery has run
    with pytest.raises(RegistryError, match="registered twice"):
        register("skipnet_m")(lambda: None)
    assert "skipnet_m" in registry._REGISTRY


def test_unknown_name_suggests_closest():
    with pytest.raises(RegistryError) as err:
        get("skipnet")
    assert "did you mean 'skipnet_m'" in str(err.value)


def test_skipnet_spec_fields():
    spec = get("skipnet_m")
    assert isinstance(spec, ModelSpec) and spec.name == "skipnet_m"
    assert spec.task == "classification"
    assert spec.input.shape == (1, 3, 32, 32)
    assert spec.input.mean == (0.1307,) * 3 and spec.input.std == (0.3081,) * 3
    assert spec.labels == [str(d) for d in range(10)]
    assert spec.outputs[0].shape == (1, 10)
    assert spec.postprocess["kind"] == "classify"
    assert spec.weights_path().name == "skipnet_m.mnist5k.safetensors"


def test_skipnet_builds_and_maps_shapes():
    import torch

    model = get("skipnet_m").build().eval()
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(2, 3, 32, 32))
        logits = model.forward_head(feats)
    assert feats.shape == (2, model.num_features, 2, 2)
    assert logits.shape == (2, 10)
