"""Predictors: one calling convention over an onnxruntime session or a scikit-learn model.

Rows go in as a 2-D NumPy array; predictions come out as plain Python lists, ready for
JSON or a data frame. ``formats.load_for_serving`` picks the implementation.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.errors import InvalidInput

CLASSES_KEY = "shipyard.classes"  # written by registry.onnx_export

_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class Predictor:
    """Predict from a 2-D array of rows. ``classes`` names probability columns, when known."""

    kind = ""
    classes: list[Any] | None = None

    @property
    def has_proba(self) -> bool:
        return False

    def predict(self, rows: Any) -> list[Any]:
        return self.predict_with_proba(rows)[0]

    def predict_proba(self, rows: Any) -> list[list[float]]:
        probabilities = self.predict_with_proba(rows)[1]
        if probabilities is None:
            raise InvalidInput(f"this {self.kind} model gives no class probabilities: call predict instead")
        return probabilities

    def predict_with_proba(self, rows: Any) -> tuple[list[Any], list[list[float]] | None]:
        """Predictions and, where the model has them, class probabilities, in one pass."""
        raise NotImplementedError


class OnnxPredictor(Predictor):
    """An onnxruntime session whose first output is the prediction and second, if any, the probabilities."""

    kind = "onnx"

    def __init__(self, session: Any) -> None:
        self.session = session
        first = session.get_inputs()[0]
        self._input = first.name
        self._dtype = _ONNX_DTYPES.get(first.type, "float32")
        outputs = session.get_outputs()
        self._output_names = [o.name for o in outputs[:2]]
        self._zipmap = len(outputs) > 1 and outputs[1].type.startswith("seq(map")
        metadata = session.get_modelmeta().custom_metadata_map
        if CLASSES_KEY in metadata:
            self.classes = list(json.loads(metadata[CLASSES_KEY]))

    @property
    def has_proba(self) -> bool:
        return len(self._output_names) > 1

    def predict_with_proba(self, rows: Any) -> tuple[list[Any], list[list[float]] | None]:
        import numpy as np

        matrix = np.asarray(rows)
        if matrix.ndim != 2:
            raise InvalidInput(f"rows have shape {matrix.shape}: expected a 2-D array, one row per instance")
        try:
            matrix = matrix.astype(self._dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"rows cannot be read as {self._dtype} ({exc}): this ONNX model takes numbers") from exc
        outputs = self.session.run(self._output_names, {self._input: matrix})
        labels = np.asarray(outputs[0])
        predictions = (labels.reshape(-1) if labels.ndim > 1 and labels.shape[1] == 1 else labels).tolist()
        if len(outputs) < 2:
            return predictions, None
        if self._zipmap:  # a list of {class: probability} per row
            maps = outputs[1]
            if self.classes is None and maps:
                self.classes = list(maps[0].keys())
            return predictions, [[float(row[c]) for c in self.classes or []] for row in maps]
        probabilities = np.asarray(outputs[1], dtype=np.float64)
        if self.classes is None:
            self.classes = list(range(probabilities.shape[1]))
        return predictions, probabilities.tolist()


class SklearnPredictor(Predictor):
    """A scikit-learn estimator (or any object with ``predict``)."""

    kind = "sklearn"

    def __init__(self, model: Any) -> None:
        self.model = model
        classes = getattr(model, "classes_", None)
        if classes is not None:
            self.classes = [c.item() if hasattr(c, "item") else c for c in classes]
        self._names = getattr(model, "feature_names_in_", None)

    @property
    def has_proba(self) -> bool:
        return hasattr(self.model, "predict_proba")

    def predict_with_proba(self, rows: Any) -> tuple[list[Any], list[list[float]] | None]:
        import numpy as np

        frame = self._frame(rows)
        predictions = np.asarray(self.model.predict(frame)).tolist()
        if not self.has_proba:
            return predictions, None
        return predictions, np.asarray(self.model.predict_proba(frame), dtype=np.float64).tolist()

    def _frame(self, rows: Any) -> Any:
        """Models fitted on a data frame get their column names back, so column-wise transformers still work."""
        import numpy as np

        matrix = np.asarray(rows)
        if matrix.ndim != 2:
            raise InvalidInput(f"rows have shape {matrix.shape}: expected a 2-D array, one row per instance")
        if self._names is None or matrix.shape[1] != len(self._names):
            return matrix
        import pandas as pd

        return pd.DataFrame(matrix, columns=list(self._names))
