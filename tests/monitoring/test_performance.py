"""Quality per version: metrics equal scikit-learn's on the same rows; the task is read from signatures or labels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics

from shipyard.errors import InvalidInput
from shipyard.monitoring import performance, window
from shipyard.serving.gateway.prediction_log import SCHEMA, PredictionLog, PredictionRecord


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A labelled window: one row per instance."""
    base = {"row": 0, "status": 200, "latency_ms": 1.0, "probabilities": None, "label": None}
    return pd.DataFrame([{**base, **row} for row in rows])


def binary_case(seed: int = 0, n: int = 200) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    scores = np.clip(truth * 0.3 + rng.uniform(0, 0.7, n), 0, 1)
    predictions = (scores > 0.5).astype(int)
    return truth, predictions, np.column_stack([1 - scores, scores])


def test_binary_classification_metrics_equal_sklearns() -> None:
    truth, predictions, probabilities = binary_case()
    found = performance.classification(truth.tolist(), predictions.tolist(), probabilities.tolist())
    assert found["positive"] == 1
    assert found["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predictions))
    assert found["precision"] == pytest.approx(metrics.precision_score(truth, predictions))
    assert found["recall"] == pytest.approx(metrics.recall_score(truth, predictions))
    assert found["f1"] == pytest.approx(metrics.f1_score(truth, predictions))
    assert found["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, probabilities[:, 1]))
    assert found["log_loss"] == pytest.approx(metrics.log_loss(truth, probabilities))
    assert found["with_probabilities"] == len(truth)


def test_the_positive_class_can_be_named() -> None:
    truth, predictions, probabilities = binary_case(1)
    found = performance.classification(truth.tolist(), predictions.tolist(), probabilities.tolist(), positive=0)
    assert found["precision"] == pytest.approx(metrics.precision_score(truth, predictions, pos_label=0))
    assert found["recall"] == pytest.approx(metrics.recall_score(truth, predictions, pos_label=0))
    assert found["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth == 0, probabilities[:, 0]))


def test_string_labels_take_the_larger_one_as_positive() -> None:
    truth = ["yes", "no", "yes", "yes", "no"]
    predictions = ["yes", "yes", "no", "yes", "no"]
    found = performance.classification(truth, predictions)
    assert found["positive"] == "yes"
    assert found["precision"] == pytest.approx(metrics.precision_score(truth, predictions, pos_label="yes"))
    assert "roc_auc" not in found  # no probabilities, no ROC AUC


def test_multiclass_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 3, 300)
    raw = rng.dirichlet([1, 1, 1], 300) + np.eye(3)[truth] * 0.5
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    predictions = probabilities.argmax(axis=1)
    found = performance.classification(truth.tolist(), predictions.tolist(), probabilities.tolist())
    assert "positive" not in found
    for name, score in (("precision", metrics.precision_score), ("recall", metrics.recall_score), ("f1", metrics.f1_score)):
        assert found[name] == pytest.approx(score(truth, predictions, average="macro")), name
    assert found["roc_auc"] == pytest.approx(metrics.roc_auc_score(truth, probabilities, multi_class="ovr"))
    assert found["log_loss"] == pytest.approx(metrics.log_loss(truth, probabilities))


def test_probabilities_that_cannot_be_matched_to_classes_give_no_auc() -> None:
    # Three probability columns, but only two classes seen: which column is which is unknown.
    found = performance.classification([0, 1, 1], [0, 1, 0], [[0.5, 0.3, 0.2]] * 3)
    assert (found["roc_auc"], found["log_loss"]) == (None, None)
    named = performance.classification([0, 1, 1], [0, 1, 0], [[0.5, 0.3, 0.2]] * 3, classes=[0, 1, 2])
    assert named["log_loss"] == pytest.approx(metrics.log_loss([0, 1, 1], [[0.5, 0.3, 0.2]] * 3, labels=[0, 1, 2]))


def test_numbers_and_their_text_are_one_class() -> None:
    found = performance.classification(["1", "0", 1.0, True], [1, 0, "1", 1])
    assert found["accuracy"] == 1.0


def test_regression_metrics_equal_sklearns() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(10, 2, 100)
    predictions = truth + rng.normal(0, 1, 100)
    found = performance.regression(truth.tolist(), predictions.tolist())
    assert found["mae"] == pytest.approx(metrics.mean_absolute_error(truth, predictions))
    assert found["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(truth, predictions)))
    assert found["r2"] == pytest.approx(metrics.r2_score(truth, predictions))
    with pytest.raises(InvalidInput, match="numeric labels"):
        performance.regression(["cat"], [1.0])


@pytest.mark.parametrize(
    ("signature", "task"),
    [
        ({"outputs": {"type": "tensor", "dtype": "double", "shape": [-1]}}, "regression"),
        ({"outputs": {"type": "tensor", "dtype": "long", "shape": [-1]}}, "classification"),
        ({"outputs": {"type": "columns", "columns": [{"name": "y", "type": "string"}]}}, "classification"),
        ({"inputs": {}}, None),
        (None, None),
    ],
)
def test_the_signature_names_the_task(signature: dict[str, Any] | None, task: str | None) -> None:
    assert performance.task_from_signature(signature) == task


def test_without_a_signature_the_values_name_the_task() -> None:
    assert performance.infer_task([1, 0, 1], [1, 1, 0]) == "classification"
    assert performance.infer_task(["a"], ["b"]) == "classification"
    assert performance.infer_task([1.5, 2.0], [1.0, 2.0]) == "regression"
    with pytest.raises(InvalidInput, match="expected one of classification, regression"):
        performance.check_task("ranking")


def test_by_version_counts_requests_and_labels_and_scores_each_version() -> None:
    rows = [
        # version 1: a two-row request labelled row by row, a one-row request, one unlabelled, one failed
        {"request_id": "a", "row": 0, "version": 1, "prediction": 1, "label": 1},
        {"request_id": "a", "row": 1, "version": 1, "prediction": 0, "label": 1},
        {"request_id": "b", "version": 1, "prediction": 0, "label": 0},
        {"request_id": "c", "version": 1, "prediction": 1},
        {"request_id": "d", "version": 1, "status": 400, "prediction": None, "label": 1},
        # version 2: regression-looking values, but told it is classification by the signature hint
        {"request_id": "e", "version": 2, "prediction": 2, "label": 2},
        {"request_id": "f", "version": 2, "prediction": 3, "label": 2},
        {"request_id": "g", "version": None, "status": 404, "prediction": None},
    ]
    found = performance.by_version(frame(rows), hints=lambda v: "classification" if v == 2 else None)
    assert set(found) == {1, 2}
    one = found[1]
    assert (one["requests"], one["errors"], one["instances"], one["labelled"], one["labelled_requests"]) == (4, 1, 4, 3, 2)
    assert one["task"] == "classification"
    assert one["metrics"]["accuracy"] == pytest.approx(metrics.accuracy_score([1, 1, 0], [1, 0, 0]))
    assert one["metrics"]["recall"] == pytest.approx(metrics.recall_score([1, 1, 0], [1, 0, 0]))
    assert found[2]["metrics"]["accuracy"] == 0.5
    regression = performance.by_version(frame(rows), "regression")
    assert regression[2]["metrics"]["mae"] == pytest.approx(0.5)


def test_a_version_without_labels_has_no_metrics() -> None:
    found = performance.by_version(frame([{"request_id": "a", "version": 3, "prediction": 1}]))
    assert found[3]["labelled"] == 0
    assert found[3]["metrics"] is None
    assert performance.by_version(frame([]).reindex(columns=["request_id", "version"])) == {}


# -- probabilities in the prediction log, read back by the window -------------------------------


def record(request_id: str, rows: list[list[float]], outputs: list[Any], probabilities: Any) -> PredictionRecord:
    return PredictionRecord(
        request_id, int(time.time() * 1000), "team-a", "ep", 1, "clf", 1, "v1", 200, 2.0, np.array(rows), outputs,
        None, probabilities,
    )  # fmt: skip


def read_window(root: Path) -> pd.DataFrame:
    return window.read(str(root), "team-a", "ep", window.Window(requests=100), end_ms=int(time.time() * 1000) + 1000,
                       names_for=lambda _: None)  # fmt: skip


def test_logged_probabilities_come_back_one_list_per_instance(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    log.add(record("a", [[1.0, 2.0], [3.0, 4.0]], [1, 0], [[0.2, 0.8], [0.9, 0.1]]))
    log.add(record("b", [[5.0, 6.0]], [1], None))
    log.flush()
    found = read_window(tmp_path).sort_values(["request_id", "row"])
    assert found["probabilities"].tolist() == [[0.2, 0.8], [0.9, 0.1], None]
    assert found["prediction"].tolist() == [1, 0, 1]


def test_log_files_written_before_the_column_read_as_without_probabilities(tmp_path: Path) -> None:
    old = SCHEMA.remove(SCHEMA.get_field_index("probabilities"))
    folder = tmp_path / "namespace=team-a" / "endpoint=ep" / f"date={time.strftime('%Y-%m-%d', time.gmtime())}"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(
        [{"request_id": "old", "timestamp": int(time.time() * 1000), "namespace": "team-a", "endpoint": "ep", "revision": 1,
          "model": "clf", "version": 1, "protocol": "v1", "status": 200, "latency_ms": 1.0, "inputs": [[1.0, 2.0]],
          "outputs": "[1]", "error": None}],
        schema=old,
    )  # fmt: skip
    pq.write_table(table, folder / "part-old.parquet")
    found = read_window(tmp_path)
    assert found["probabilities"].tolist() == [None]
    assert found["prediction"].tolist() == [1]
