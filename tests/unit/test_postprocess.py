import numpy as np
import pytest

from runtime_py.errors import PocketError
from runtime_py.postprocess import classify, get_postprocessor, softmax


def test_classify_orders_labels_by_probability():
    out = classify({"top_k": 2, "softmax": True}, ["a", "b", "c"])([np.array([[0.0, 3.0, 1.0]], np.float32)])
    assert [t["label"] for t in out["top_k"]] == ["b", "c"]
    assert out["label"] == "b"
    assert out["score"] == pytest.approx(np.exp(3) / (1 + np.exp(3) + np.exp(1)))


def test_softmax_is_stable_and_sums_to_one():
    p = softmax(np.array([1000.0, 1000.0, -1000.0]))
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.5)


def test_top_k_is_capped_by_the_number_of_classes():
    out = classify({"top_k": 5}, None)([np.zeros((1, 2), np.float32)])
    assert len(out["top_k"]) == 2 and out["top_k"][0]["label"] == "0"


def test_unknown_kind_names_the_fix():
    with pytest.raises(PocketError, match="upgrade pocketvision"):
        get_postprocessor("segmentt")


@pytest.mark.parametrize("classes", [2, 10, 64, 65, 1000])
def test_classify_matches_a_full_sort_of_the_softmax_on_either_side_of_the_small_head_cutoff(classes):
    rng = np.random.default_rng(classes)
    logits = rng.normal(0, 4, size=(1, classes)).astype(np.float32)
    out = classify({"top_k": 5}, None)([logits])
    probs = softmax(logits.astype(np.float64)).reshape(-1)
    expected = np.argsort(-probs, kind="stable")[:min(5, classes)]
    assert [t["index"] for t in out["top_k"]] == expected.tolist()
    np.testing.assert_allclose([t["score"] for t in out["top_k"]], probs[expected], rtol=1e-6)
    assert out["label"] == str(expected[0])


def test_without_softmax_the_raw_logits_are_the_scores():
    out = classify({"top_k": 3, "softmax": False}, None)([np.array([[2.0, -1.0, 5.0, 2.0]], np.float32)])
    assert [(t["index"], t["score"]) for t in out["top_k"]] == [(2, 5.0), (0, 2.0), (3, 2.0)]


def test_labels_shorter_than_the_classes_fall_back_to_the_index():
    out = classify({"top_k": 2}, ["zero"])([np.array([[0.0, 9.0]], np.float32)])
    assert [t["label"] for t in out["top_k"]] == ["1", "zero"]


def test_a_bad_top_k_is_refused_when_the_session_is_built():
    with pytest.raises(PocketError, match="top_k"):
        classify({"top_k": 0}, None)
