"""Model quality per version, from predictions joined to their ground truth (``feedback.labelled``).

Classification: accuracy, precision, recall and F1. With two classes, precision, recall and
F1 are those of the positive class: the larger label (``1`` over ``0``, ``"yes"`` over
``"no"``, ``True`` over ``False``) unless ``positive`` names it; with more, the unweighted
mean over classes (macro). ROC AUC and log loss come where the gateway logged class
probabilities (classifiers served through ONNX); their columns are taken to follow the
model's classes in sorted order, as scikit-learn orders ``classes_``, so the classes seen in
the labels and predictions must be as many as the columns (or be given as ``classes``).

Regression: MAE, RMSE and R².

The task is the one given, else what the version's signature says its output is (floats:
regression; integers, strings, booleans: classification), else read from the values:
strings, booleans or whole numbers only mean classification.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput
from shipyard.monitoring import feedback
from shipyard.monitoring.window import Window

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
_REGRESSION_TYPES = frozenset({"double", "float"})
_CLASSIFICATION_TYPES = frozenset({"long", "integer", "string", "boolean"})


def check_task(task: str | None) -> Task | None:
    if task is None:
        return None
    if task not in TASKS:
        raise InvalidInput(f"task {task!r} is unknown: expected one of {', '.join(TASKS)} (or leave it out to infer it)")
    return task


def task_from_signature(signature: Mapping[str, Any] | None) -> Task | None:
    """What a registry signature says the model's output is, if it says."""
    outputs = (signature or {}).get("outputs") or {}
    dtype = outputs.get("dtype")
    if outputs.get("type") == "columns" and len(outputs.get("columns") or []) == 1:
        dtype = outputs["columns"][0].get("type")
    if dtype in _REGRESSION_TYPES:
        return "regression"
    if dtype in _CLASSIFICATION_TYPES:
        return "classification"
    return None


def _plain(value: Any) -> Any:
    """One label or prediction as a comparable value: booleans and whole floats as ints."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def infer_task(labels: Sequence[Any], predictions: Sequence[Any]) -> Task:
    """Classification when every value is a string, a boolean or a whole number; regression otherwise."""
    for value in (*labels, *predictions):
        if isinstance(value, str | bool | np.bool_):
            return "classification"
        if isinstance(value, float | np.floating) and not float(value).is_integer():
            return "regression"
    return "classification"


def as_classes(labels: Sequence[Any], predictions: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Labels and predictions as comparable class values: whole numbers as ints, all text if any is text."""
    truth = [_plain(v) for v in labels]
    guess = [_plain(v) for v in predictions]
    if any(isinstance(v, str) for v in (*truth, *guess)):  # mixed kinds compare as text: 1 and "1" are one class
        truth, guess = [str(v) for v in truth], [str(v) for v in guess]
    return truth, guess


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def classification(
    labels: Sequence[Any],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float] | None] | None = None,
    *,
    positive: Any = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and, where probabilities are at hand, ROC AUC and log loss."""
    from sklearn import metrics

    truth, guess = as_classes(labels, predictions)
    seen = sorted(set(truth) | set(guess))
    found: dict[str, Any] = {"accuracy": float(metrics.accuracy_score(truth, guess))}
    if len(seen) <= 2 or positive is not None:
        chosen = _plain(positive) if positive is not None else seen[-1]
        if truth and isinstance(truth[0], str):
            chosen = str(chosen)
        t, p = np.asarray(truth, dtype=object) == chosen, np.asarray(guess, dtype=object) == chosen
        found["positive"] = chosen
        found["precision"] = float(metrics.precision_score(t, p, zero_division=0))
        found["recall"] = float(metrics.recall_score(t, p, zero_division=0))
        found["f1"] = float(metrics.f1_score(t, p, zero_division=0))
    else:
        for name, score in (("precision", metrics.precision_score), ("recall", metrics.recall_score), ("f1", metrics.f1_score)):
            found[name] = float(score(truth, guess, average="macro", zero_division=0))
    found.update(_probability_metrics(truth, probabilities, classes if classes is not None else seen, found.get("positive")))
    return found


def _probability_metrics(
    truth: list[Any], probabilities: Sequence[Sequence[float] | None] | None, classes: Sequence[Any], positive: Any
) -> dict[str, Any]:
    """ROC AUC and log loss over the rows that have probabilities, when their columns can be named."""
    from sklearn import metrics

    if probabilities is None:
        return {}
    rows = [i for i, p in enumerate(probabilities) if isinstance(p, list | tuple | np.ndarray) and len(p) > 0]
    if not rows:
        return {}
    matrix = np.asarray([probabilities[i] for i in rows], dtype=np.float64)
    order = [_plain(c) for c in classes]
    if truth and isinstance(truth[0], str):
        order = [str(c) for c in order]
    found: dict[str, Any] = {"with_probabilities": len(rows), "roc_auc": None, "log_loss": None}
    if matrix.ndim != 2 or matrix.shape[1] != len(order) or len(order) < 2:
        return found  # columns cannot be matched to classes: say nothing rather than something wrong
    matrix = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1e-12, None)
    y = [truth[i] for i in rows]
    if any(v not in order for v in y):
        return found
    found["log_loss"] = _finite(metrics.log_loss(y, matrix, labels=order))
    if len(set(y)) < 2:  # ROC AUC needs both outcomes among the labels
        return found
    if len(order) == 2:
        index = order.index(positive) if positive in order else 1
        found["roc_auc"] = _finite(metrics.roc_auc_score(np.asarray(y, dtype=object) == order[index], matrix[:, index]))
    elif len(set(y)) == len(order):
        found["roc_auc"] = _finite(metrics.roc_auc_score(y, matrix, multi_class="ovr", average="macro", labels=order))
    return found


def regression(labels: Sequence[Any], predictions: Sequence[Any]) -> dict[str, Any]:
    """MAE, RMSE and (from two labels on) R²."""
    from sklearn import metrics

    try:
        truth = np.asarray(labels, dtype=np.float64)
        guess = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"regression needs numeric labels and predictions ({exc}): send numbers as labels, or ask for task=classification"
        ) from exc
    found: dict[str, Any] = {
        "mae": float(metrics.mean_absolute_error(truth, guess)),
        "rmse": float(math.sqrt(metrics.mean_squared_error(truth, guess))),
    }
    if len(truth) >= 2:
        found["r2"] = _finite(float(metrics.r2_score(truth, guess)))
    return found


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Instances that were answered (status < 400, a prediction) and have a label."""
    if frame.empty or "label" not in frame.columns:
        return frame.iloc[0:0]
    answered = (frame["status"] < 400) & frame["prediction"].notna()
    return frame[answered & frame["label"].notna()]


def resolve_task(task: str | None, hint: Task | None, labels: Sequence[Any], predictions: Sequence[Any]) -> Task | None:
    """The given task, else the signature's, else read from the values (None with no values)."""
    chosen = check_task(task) or hint
    if chosen is None and len(labels):
        chosen = infer_task(labels, predictions)
    return chosen


def scores(rows: pd.DataFrame, task: Task, *, positive: Any = None, classes: Sequence[Any] | None = None) -> dict[str, Any]:
    """The metrics of ``task`` over labelled ``rows``."""
    labels, predictions = rows["label"].tolist(), rows["prediction"].tolist()
    if task == "regression":
        return regression(labels, predictions)
    probabilities = rows["probabilities"].tolist() if "probabilities" in rows.columns else None
    return classification(labels, predictions, probabilities, positive=positive, classes=classes)


def by_version(
    frame: pd.DataFrame,
    task: str | None = None,
    *,
    hints: Callable[[int], Task | None] | None = None,
    positive: Any = None,
) -> dict[int, dict[str, Any]]:
    """Per served version: how many requests and instances it answered, how many are labelled, and the metrics.

    ``frame`` is a labelled window (``feedback.labelled``); ``hints`` gives a version's task
    from its signature. A version with no labelled instance gets ``metrics: None``.
    """
    check_task(task)
    found: dict[int, dict[str, Any]] = {}
    if frame.empty:
        return found
    for version in sorted(int(v) for v in frame["version"].dropna().unique()):
        served = frame[frame["version"] == version]
        rows = labelled_rows(served)
        labels, predictions = rows["label"].tolist(), rows["prediction"].tolist()
        chosen = resolve_task(task, hints(version) if hints is not None else None, labels, predictions)
        found[version] = {
            "version": version,
            "task": chosen,
            "requests": int(served["request_id"].nunique()),
            "errors": int(served.loc[served["status"] >= 400, "request_id"].nunique()),
            "instances": int((served["status"] < 400).sum()),
            "labelled": len(rows),
            "labelled_requests": int(rows["request_id"].nunique()) if len(rows) else 0,
            "metrics": scores(rows, chosen, positive=positive) if len(rows) and chosen is not None else None,
        }
    return found


def endpoint_quality(
    session: Session,
    caller: Caller,
    log_url: str,
    namespace: str,
    endpoint: str,
    window: Window,
    *,
    end_ms: int,
    task: str | None = None,
    positive: Any = None,
) -> dict[str, Any]:
    """``by_version`` over the labelled window of an endpoint's prediction log (``log_url``) up to ``end_ms``."""
    check_task(task)
    found = feedback.labelled_window(session, caller, log_url, namespace, endpoint, window, end_ms=end_ms)
    signatures = found.signatures
    versions = by_version(found.frame, task, hints=lambda v: task_from_signature(signatures.get(v)), positive=positive)
    return {
        "namespace": namespace,
        "endpoint": endpoint,
        "model": found.model,
        "window": window.to_dict(),
        "end_ms": end_ms,
        "requests": int(found.frame["request_id"].nunique()) if not found.frame.empty else 0,
        "labelled": sum(v["labelled"] for v in versions.values()),
        "versions": list(versions.values()),
    }
