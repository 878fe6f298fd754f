"""The task table is the one list of tasks: the schema, the CLI, byom and runtime_py's
postprocess kinds agree with it, and its metrics compute what they claim."""
import numpy as np
import pytest

from models import metrics
from models.tasks import TASK_NAMES, TASKS, get_task
from runtime_py.errors import UsageError
from runtime_py.postprocess import POSTPROCESSORS
from schemas import load_schema


def test_schema_task_enum_is_the_task_table():
    schema = load_schema("manifest")
    assert schema["properties"]["model"]["properties"]["task"]["enum"] == list(TASK_NAMES)


def test_schema_postprocess_kinds_are_runtime_pys():
    schema = load_schema("manifest")
    assert set(schema["properties"]["postprocess"]["properties"]["kind"]["enum"]) == set(POSTPROCESSORS)


def test_every_task_names_a_postprocess_kind_runtime_py_has():
    for task in TASKS:
        assert task.postprocess in POSTPROCESSORS, task.name


def test_every_metric_task_reports_its_headline():
    rng = np.random.default_rng(0)
    samples = {"classification": (rng.normal(size=(6, 4)), rng.integers(0, 4, 6)),
               "segmentation": (rng.normal(size=(2, 3, 5, 5)), rng.integers(0, 3, (2, 5, 5))),
               "depth": (rng.uniform(1, 2, (2, 1, 4, 4)), rng.uniform(1, 2, (2, 1, 4, 4))),
               "saliency": (rng.uniform(0, 1, (2, 1, 4, 4)), rng.integers(0, 2, (2, 1, 4, 4)))}
    for task in TASKS:
        if task.metrics is None:
            continue
        values = task.metrics(*samples[task.name])
        assert task.metric in values and np.isfinite(values[task.metric]), task.name


def test_cli_task_choices_come_from_the_table():
    from sdk_builder.cli import build

    option = next(p for p in build.params if p.name == "task")
    assert list(option.type.choices) == list(TASK_NAMES)


def test_unknown_task_suggests_the_closest():
    with pytest.raises(UsageError, match="did you mean 'segmentation'"):
        get_task("segmentaton")


def test_miou_on_a_known_confusion():
    # class 0: 3 px right, class 1: 1 px right and 1 px predicted as 0
    targets = np.array([[[0, 0, 0, 1, 1]]])
    logits = np.zeros((1, 2, 1, 5))
    logits[0, 0, 0, :4] = 1.0        # predicts 0,0,0,0,1
    logits[0, 1, 0, 4] = 1.0
    m = metrics.segmentation_metrics(logits, targets)
    assert m["iou/0"] == pytest.approx(3 / 4) and m["iou/1"] == pytest.approx(1 / 2)
    assert m["miou"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert m["pixel_accuracy"] == pytest.approx(4 / 5)


def test_miou_ignores_classes_absent_from_targets_and_predictions():
    targets = np.zeros((1, 2, 2), int)
    logits = np.zeros((1, 4, 2, 2))
    logits[:, 0] = 1.0
    assert metrics.segmentation_metrics(logits, targets)["miou"] == pytest.approx(1.0)


def test_drop_points_follow_the_metric_direction():
    from dataclasses import replace

    assert get_task("segmentation").drop_points(0.80, 0.79) == pytest.approx(1.0)
    error_metric = replace(get_task("depth"), metric="abs_rel", higher_is_better=False)
    assert error_metric.drop_points(0.10, 0.11) == pytest.approx(1.0)


def test_depth_and_saliency_metrics_on_known_values():
    d = metrics.depth_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.0]))
    assert d["delta1"] == pytest.approx(2 / 3) and d["abs_rel"] == pytest.approx(1 / 3)
    s = metrics.saliency_metrics(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0]))
    assert s["max_f"] == pytest.approx(1.0) and s["mae"] == pytest.approx(0.15)
