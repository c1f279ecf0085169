from __future__ import annotations

import numpy as np
import pytest

from shipyard.errors import InvalidInput
from shipyard.serving.gateway.validation import (
    Columns,
    InputSchema,
    Records,
    Rows,
    Split,
    Tensor,
    schema_from_signature,
    to_matrix,
)

TENSOR = InputSchema(width=3)
TABLE = schema_from_signature(
    {
        "inputs": {
            "type": "columns",
            "columns": [
                {"name": "age", "type": "long", "nullable": False},
                {"name": "income", "type": "double", "nullable": True},
                {"name": "member", "type": "boolean", "nullable": False},
            ],
        }
    }
)


def rejects(payload: Rows | Records | Columns | Split | Tensor, schema: InputSchema, *needles: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_matrix(payload, schema)
    for needle in needles:
        assert needle in caught.value.message


def test_signature_of_a_tensor_gives_its_width() -> None:
    schema = schema_from_signature({"inputs": {"type": "tensor", "dtype": "double", "shape": [-1, 30]}})
    assert (schema.width, schema.names) == (30, None)
    assert schema_from_signature(None).width is None


def test_numeric_rows_become_a_float_matrix() -> None:
    matrix = to_matrix(Rows([[1, 2, 3], [4.5, 5, 6]], "instances"), TENSOR)
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[1, 2, 3], [4.5, 5, 6]]


def test_wrong_feature_count_names_the_row_and_the_expected_count() -> None:
    rejects(Rows([[1, 2]], "instances"), TENSOR, "instances[0]", "2 value(s)", "expected 3 features")
    rejects(Rows([[1, 2, 3], [1, 2]], "instances"), TENSOR, "instances[1]", "expected 3")


def test_a_string_is_named_with_its_position() -> None:
    rejects(Rows([[1, 2, 3], [1, "x", 3]], "instances"), TENSOR, "instances[1][1]", "'x'", "expected a double")


def test_null_where_the_signature_says_never_null() -> None:
    rejects(Rows([[1, None, 3]], "instances"), TENSOR, "instances[0][1] is null")


def test_empty_or_malformed_instances() -> None:
    rejects(Rows([], "instances"), TENSOR, "non-empty list")
    rejects(Rows([1, 2, 3], "instances"), TENSOR, "instances[0] is a number")


def test_records_follow_the_signature_columns() -> None:
    matrix = to_matrix(Records([{"member": True, "age": 40, "income": None}], "instances"), TABLE)
    assert matrix[0, 0] == 40
    assert np.isnan(matrix[0, 1])
    assert matrix[0, 2] == 1.0


def test_records_with_unknown_or_missing_columns() -> None:
    rejects(Records([{"age": 1, "income": 2.0, "member": True, "zip": 9}], "instances"), TABLE, "unknown column", "zip")
    rejects(Records([{"income": 2.0, "member": True}], "instances"), TABLE, "instances[0].age is missing")


def test_type_rules_per_column() -> None:
    rejects(Records([{"age": 1.5, "income": 1.0, "member": True}], "r"), TABLE, "r[0].age", "integer")
    rejects(Records([{"age": 1, "income": True, "member": True}], "r"), TABLE, "r[0].income is a boolean")
    rejects(Rows([[1.5, 2.0, 1]], "instances"), TABLE, "instances[0][0]", "integer")


def test_records_need_a_signature_with_columns() -> None:
    rejects(Records([{"a": 1}], "instances"), TENSOR, "has none")


def test_columns_and_split_orientations() -> None:
    columns = to_matrix(Columns({"age": [1, 2], "income": [3.0, 4.0], "member": [True, False]}, "inputs"), TABLE)
    split = to_matrix(Split(["member", "income", "age"], [[True, 3.0, 1], [False, 4.0, 2]], "dataframe_split"), TABLE)
    assert columns.tolist() == split.tolist() == [[1, 3, 1], [2, 4, 0]]
    rejects(Columns({"age": [1, 2], "income": [1.0], "member": [True, True]}, "inputs"), TABLE, "lengths")


def test_tensor_with_nan_is_rejected_unless_nullable() -> None:
    rejects(Tensor(np.array([[1.0, np.nan, 2.0]]), "inputs[0]"), TENSOR, "inputs[0][0][1]", "never null")
    with_nan = to_matrix(Tensor(np.array([[1.0, np.nan, 1.0]], dtype=np.float32), "inputs[0]"), TABLE)
    assert np.isnan(with_nan[0, 1])


def test_tensor_shape_must_match() -> None:
    rejects(Tensor(np.zeros((2, 4)), "inputs[0]"), TENSOR, "inputs[0] has 4 value(s)", "expected 3")
    rejects(Tensor(np.zeros((2, 3, 1)), "inputs[0]"), TENSOR, "shape [2, 3, 1]")
