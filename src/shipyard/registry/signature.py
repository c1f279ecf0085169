"""Input and output signatures, inferred from the data a model was trained on."""

from __future__ import annotations

from typing import Any

_KINDS = {"b": "boolean", "i": "long", "u": "long", "f": "double", "O": "string", "U": "string", "S": "binary", "M": "datetime"}


def _dtype_name(dtype: Any) -> str:
    import numpy as np

    try:
        resolved = np.dtype(dtype)
    except TypeError:  # pandas extension types such as the string dtype
        return "boolean" if str(dtype) == "boolean" else "string"
    if resolved == np.float32:
        return "float"
    if resolved == np.int32:
        return "integer"
    return _KINDS.get(resolved.kind, "string")


def describe(data: Any) -> dict[str, Any]:
    """A column list for data frames, a tensor spec for arrays."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return {
            "type": "columns",
            "columns": [
                {"name": str(name), "type": _dtype_name(dtype), "nullable": bool(data[name].isna().any())}
                for name, dtype in data.dtypes.items()
            ],
        }
    if pd is not None and isinstance(data, pd.Series):
        return {"type": "tensor", "dtype": _dtype_name(data.dtype), "shape": [-1]}
    import numpy as np

    array = np.asarray(data)
    shape = [-1, *array.shape[1:]]
    return {"type": "tensor", "dtype": _dtype_name(array.dtype), "shape": shape}


def infer(inputs: Any, outputs: Any | None = None) -> dict[str, Any]:
    signature: dict[str, Any] = {"inputs": describe(inputs)}
    if outputs is not None:
        signature["outputs"] = describe(outputs)
    return signature
