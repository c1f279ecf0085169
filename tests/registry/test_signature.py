from __future__ import annotations

import numpy as np
import pandas as pd

from shipyard.registry.signature import describe, infer


def test_data_frames_become_named_typed_columns() -> None:
    frame = pd.DataFrame(
        {
            "age": np.array([30, 40], dtype=np.int64),
            "small": np.array([1, 2], dtype=np.int32),
            "income": [1.5, None],
            "ratio": np.array([0.1, 0.2], dtype=np.float32),
            "city": ["Oslo", "Lima"],
            "member": [True, False],
            "joined": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "label": pd.array(["a", None], dtype="string"),
            "flag": pd.array([True, None], dtype="boolean"),
        }
    )
    spec = describe(frame)
    assert spec["type"] == "columns"
    assert [c["name"] for c in spec["columns"]] == list(frame.columns)
    types = {c["name"]: c["type"] for c in spec["columns"]}
    assert types == {
        "age": "long",
        "small": "integer",
        "income": "double",
        "ratio": "float",
        "city": "string",
        "member": "boolean",
        "joined": "datetime",
        "label": "string",
        "flag": "boolean",
    }
    nullable = {c["name"] for c in spec["columns"] if c["nullable"]}
    assert nullable == {name for name in frame.columns if frame[name].isna().any()}


def test_arrays_become_tensors_with_a_free_batch_dimension() -> None:
    assert describe(np.zeros((7, 3, 2), dtype=np.float32)) == {"type": "tensor", "dtype": "float", "shape": [-1, 3, 2]}
    assert describe([[1, 2], [3, 4]]) == {"type": "tensor", "dtype": "long", "shape": [-1, 2]}
    assert describe(np.array([b"x"]))["dtype"] == "binary"
    assert describe(pd.Series([1.0, 2.0])) == {"type": "tensor", "dtype": "double", "shape": [-1]}


def test_infer_adds_outputs_only_when_given() -> None:
    inputs = pd.DataFrame({"x": [1.0]})
    assert infer(inputs) == {"inputs": describe(inputs)}
    outputs = np.array([0, 1])
    assert infer(inputs, outputs) == {"inputs": describe(inputs), "outputs": describe(outputs)}
