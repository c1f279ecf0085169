"""The reference profile of a model's training data, built where the data is (the SDK, at registration).

The profile covers the training inputs and the model's predictions on them (column
``prediction``), so one profile serves data drift and prediction drift. Its columns carry
the names the prediction log's windows give features (``monitoring.window``): a data
frame's own column names, which the signature records, and ``feature_0``, ``feature_1``, ...
for arrays, whose signature names none.

Data bigger than ``MAX_ROWS`` is profiled on a sample of that many rows, drawn with a fixed
seed, so registering the same data twice gives the same profile (and the same digest).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.monitoring.profile import Profile

MAX_ROWS = 100_000
SEED = 0
PREDICTION = "prediction"


def sample_rows(data: Any, max_rows: int = MAX_ROWS, seed: int = SEED) -> Any:
    """``data`` itself when it has at most ``max_rows`` rows, else that many rows drawn without replacement, in order."""
    if not hasattr(data, "__len__"):
        data = np.asarray(data)
    rows = len(data)
    if rows <= max_rows:
        return data
    positions = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
    return data.iloc[positions] if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)[positions]


def feature_frame(data: Any) -> pd.DataFrame:
    """Training inputs as a frame named as the window names features: a frame's own names, else ``feature_<j>``."""
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
        frame.columns = [str(name) for name in frame.columns]
        return frame
    if isinstance(data, pd.Series):
        return pd.DataFrame({"feature_0": data.reset_index(drop=True)})
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise InvalidInput(
            f"training data has shape {array.shape}: a reference profile needs rows of features (2-D); "
            "pass profile=False to register without one"
        )
    return pd.DataFrame(array, columns=[f"feature_{j}" for j in range(array.shape[1])])


def training_frame(model: Any, data: Any, *, max_rows: int = MAX_ROWS, seed: int = SEED) -> pd.DataFrame:
    """The (sampled) training inputs plus the model's predictions on them, ready to profile."""
    sample = sample_rows(data, max_rows, seed)
    frame = feature_frame(sample)
    if PREDICTION in frame.columns:
        raise InvalidInput(
            f"training data has a column named {PREDICTION!r}, which the reference profile keeps for the model's "
            "predictions: rename the column, or pass profile=False to register without a profile"
        )
    if hasattr(model, "predict"):
        predictions = np.asarray(model.predict(sample))
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions.reshape(-1)
        if predictions.ndim == 1 and len(predictions) == len(frame):  # several outputs per row: inputs only
            frame[PREDICTION] = predictions
    return frame


def training_profile(model: Any, data: Any, *, max_rows: int = MAX_ROWS, seed: int = SEED) -> Profile:
    """``Profile.from_frame`` of ``training_frame``: what ``Client.register_model`` uploads beside the model."""
    return Profile.from_frame(training_frame(model, data, max_rows=max_rows, seed=seed))
