"""Digests of training data, so a model version names exactly the data it learned from."""

from __future__ import annotations

import hashlib
from typing import Any


def dataset_digest(data: Any) -> str:
    """A sha256 over a data frame's columns, dtypes and values, or an array's bytes."""
    import numpy as np
    import pandas as pd

    hasher = hashlib.sha256()
    if isinstance(data, pd.DataFrame):
        hasher.update(repr([(str(c), str(t)) for c, t in data.dtypes.items()]).encode())
        hasher.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    elif isinstance(data, pd.Series):
        hasher.update(str(data.dtype).encode())
        hasher.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    else:
        array = np.ascontiguousarray(np.asarray(data))
        hasher.update(f"{array.dtype.str}{array.shape}".encode())
        hasher.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return hasher.hexdigest()


def describe_dataset(data: Any, name: str) -> dict[str, Any]:
    shape = getattr(data, "shape", None)
    entry: dict[str, Any] = {"name": name, "digest": dataset_digest(data)}
    if shape is not None:
        entry["rows"] = int(shape[0])
        if len(shape) > 1:
            entry["columns"] = int(shape[1])
    return entry
