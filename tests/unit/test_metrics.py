import numpy as np
import pytest

from models.metrics import classification_metrics
from sdk_builder.quantize.parity import merge_parity, parity


def test_parity_numbers_on_a_known_case():
    ref = np.array([10.0, 0.0, 0.0, 0.0])
    out = np.array([10.0, 1.0, 0.0, 0.0])   # signal 100, noise 1 -> 20 dB
    p = parity(ref, out)
    assert p["max_abs_error"] == pytest.approx(1.0)
    assert p["snr_db"] == pytest.approx(20.0)
    assert p["cosine"] == pytest.approx(10 / np.sqrt(101))


def test_identical_outputs_have_infinite_snr():
    x = np.arange(5.0)
    assert parity(x, x)["snr_db"] == float("inf")


def test_merge_keeps_the_worst_case():
    a = {"max_abs_error": 1.0, "snr_db": 30.0, "cosine": 0.99}
    b = {"max_abs_error": 0.5, "snr_db": 20.0, "cosine": 0.999}
    assert merge_parity([a, b]) == {"max_abs_error": 1.0, "snr_db": 20.0, "cosine": 0.99}


def test_top1_accuracy():
    logits = np.array([[0, 1], [1, 0], [0, 1]], np.float32)
    assert classification_metrics(logits, np.array([1, 0, 0]))["top1_accuracy"] == pytest.approx(2 / 3)
