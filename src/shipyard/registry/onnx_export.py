"""ONNX export of scikit-learn models, checked against the original before it is kept.

An export is an optimisation for serving, never a requirement: ``export`` does not raise.
It returns the ONNX bytes when the graph reproduces the model on a sample of the training
data, and otherwise the reason it was left out, which registration records in a tag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shipyard.registry.predictor import CLASSES_KEY

INPUT_NAME = "input"
SAMPLE_ROWS = 500
PROBABILITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Export:
    """The ONNX bytes, or why there are none."""

    data: bytes | None
    skipped: str = ""


def export(model: Any, training_data: Any, *, sample_rows: int = SAMPLE_ROWS) -> Export:
    """Convert a fitted estimator to ONNX (float input ``input`` of shape [None, n_features])."""
    try:
        features = _numeric_matrix(training_data)
    except (TypeError, ValueError) as exc:
        return Export(None, str(exc))
    sample = training_data[:sample_rows] if hasattr(training_data, "__getitem__") else training_data
    matrix = features[:sample_rows]
    try:
        graph = _convert(model, features.shape[1])
        data = graph.SerializeToString()
        mismatch = _compare(model, sample, data, matrix)
    except Exception as exc:  # skl2onnx and onnxruntime raise many unrelated types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Export(None, f"conversion failed: {type(exc).__name__}: {first_line}"[:500])
    if mismatch:
        return Export(None, mismatch)
    return Export(data)


def _numeric_matrix(training_data: Any) -> Any:
    """The training data as a 2-D float32 array; a ValueError says which column is not numeric."""
    import numpy as np

    if hasattr(training_data, "dtypes") and hasattr(training_data, "columns"):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        for name, dtype in training_data.dtypes.items():
            if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype)):
                raise ValueError(f"column {name!r} is {dtype}: ONNX export takes numeric features only")
    array = np.asarray(training_data)
    if array.ndim != 2:
        raise ValueError(f"training data has shape {array.shape}: ONNX export needs a 2-D table of features")
    try:
        return array.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training data is not numeric ({exc}): ONNX export takes numeric features only") from exc


def _convert(model: Any, width: int) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    graph = convert_sklearn(model, initial_types=[(INPUT_NAME, FloatTensorType([None, width]))], options=options)
    classes = getattr(model, "classes_", None)
    if classes is not None:
        # Carried in the file so a server holding only the ONNX graph can name probability columns.
        entry = graph.metadata_props.add()
        entry.key = CLASSES_KEY
        entry.value = json.dumps([_plain(c) for c in classes])
    return graph


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _compare(model: Any, sample: Any, data: bytes, matrix: Any) -> str:
    """An empty string when the ONNX graph agrees with ``model`` on ``sample``, else how it differs."""
    import numpy as np

    from shipyard.registry.formats import ONNX, load_model

    session = load_model(data, ONNX)
    outputs = session.run(None, {INPUT_NAME: matrix})
    expected = np.asarray(model.predict(sample))
    got = np.asarray(outputs[0]).reshape(expected.shape)
    if hasattr(model, "classes_"):
        differ = np.flatnonzero(got.astype(str) != expected.astype(str))
        if differ.size:
            return f"ONNX labels differ from the model's on {differ.size} of {len(expected)} sample rows"
        if hasattr(model, "predict_proba") and len(outputs) > 1:
            gap = float(np.max(np.abs(np.asarray(outputs[1]) - model.predict_proba(sample))))
            if gap > PROBABILITY_TOLERANCE:
                return f"ONNX probabilities differ from the model's by up to {gap:.2g} (tolerance {PROBABILITY_TOLERANCE:g})"
        return ""
    gap = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(expected.astype(np.float64)), initial=0.0)))
    if gap > PROBABILITY_TOLERANCE * scale:
        return f"ONNX predictions differ from the model's by up to {gap:.2g}"
    return ""
