"""weights_io: round trip, shape/key checks, and refusal of code-running pickles."""
import os
import pickle

import pytest
import torch
from torch import nn

from models.weights_io import load_weights, save_weights
from runtime_py.errors import PocketError


def _net(out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, out))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_round_trip(tmp_path, suffix):
    torch.manual_seed(0)
    a, b = _net(), _net()
    with torch.no_grad():
        a[1].running_mean.fill_(0.5)
    path = save_weights(a, tmp_path / f"w{suffix}")
    load_weights(b, path)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_wrong_shape_names_key_and_shapes(tmp_path):
    path = save_weights(_net(out=5), tmp_path / "w.safetensors")
    with pytest.raises(PocketError) as err:
        load_weights(_net(out=3), path)
    msg = str(err.value)
    assert "3.weight" in msg and "(5, 4)" in msg and "(3, 4)" in msg
    assert "\n" not in msg


def test_missing_key(tmp_path):
    path = save_weights(nn.Sequential(nn.Linear(2, 2)), tmp_path / "w.safetensors")
    with pytest.raises(PocketError, match="missing key '1.weight'"):
        load_weights(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), path)


def test_missing_file(tmp_path):
    with pytest.raises(PocketError, match="not found"):
        load_weights(_net(), tmp_path / "nope.safetensors")


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"0.weight": _Evil(str(marker))}, fh)
    with pytest.raises(PocketError, match="refused"):
        load_weights(_net(), path)
    assert not marker.exists()

    # the same payload inside torch.save's zip container is refused too
    path2 = tmp_path / "evil2.pt"
    torch.save({"0.weight": _Evil(str(marker))}, path2)
    with pytest.raises(PocketError, match="refused"):
        load_weights(_net(), path2)
    assert not marker.exists()
