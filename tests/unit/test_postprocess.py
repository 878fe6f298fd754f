import numpy as np
import pytest

from runtime_py.errors import PocketError
from runtime_py.postprocess import classify, get_postprocessor, softmax

pytestmark = pytest.mark.unit


def test_classify_orders_labels_by_probability():
    out = classify([np.array([[0.0, 3.0, 1.0]], np.float32)], {"top_k": 2, "softmax": True}, ["a", "b", "c"])
    assert [t["label"] for t in out["top_k"]] == ["b", "c"]
    assert out["label"] == "b"
    assert out["score"] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.exp(1)))


def test_softmax_is_stable_and_sums_to_one():
    p = softmax(np.array([1000.0, 1000.0, -1000.0]))
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.5)


def test_top_k_is_capped_by_the_number_of_classes():
    out = classify([np.zeros((1, 2), np.float32)], {"top_k": 5}, None)
    assert len(out["top_k"]) == 2 and out["top_k"][0]["label"] == "0"


def test_unknown_kind_names_the_fix():
    with pytest.raises(PocketError, match="upgrade pocketvision"):
        get_postprocessor("segmentt")
