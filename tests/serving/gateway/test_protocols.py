"""The wire formats on their own: parsing and answers, without a server."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from shipyard.errors import InvalidInput
from shipyard.serving.gateway.protocols import mlflow, v1, v2
from shipyard.serving.gateway.validation import Columns, InputSchema, Records, Rows, Split, Tensor, to_matrix
from tests.serving.gateway.test_router import served

SCHEMA = InputSchema(width=2)


def test_v1_instances_as_rows_or_records() -> None:
    assert isinstance(v1.parse(b'{"instances": [[1, 2]]}'), Rows)
    assert isinstance(v1.parse(b'{"instances": [{"a": 1}]}'), Records)


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b"{", "not valid JSON"), (b"[1]", "JSON list"), (b'{"rows": []}', '"instances"'), (b'{"instances": 3}', "instances")],
)
def test_v1_bad_bodies(body: bytes, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        v1.parse(body)


def test_v1_answer_names_the_model_version() -> None:
    answer = orjson.loads(v1.render([0, 1], "clf:2", "team/ep@3"))
    assert answer == {"predictions": [0, 1], "model_version": "clf:2", "deployed_model_id": "team/ep@3"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}, Split),
        ({"dataframe_records": [{"a": 1, "b": 2}]}, Records),
        ({"instances": [[1, 2]]}, Rows),
        ({"inputs": {"a": [1], "b": [2]}}, Columns),
        ({"inputs": [[1, 2]]}, Rows),
    ],
)
def test_mlflow_accepts_its_four_keys(body: dict[str, object], kind: type) -> None:
    assert isinstance(mlflow.parse(orjson.dumps(body)), kind)


def test_mlflow_wants_exactly_one_key() -> None:
    with pytest.raises(InvalidInput, match="exactly one"):
        mlflow.parse(b'{"instances": [[1]], "inputs": [[1]]}')
    with pytest.raises(InvalidInput, match="exactly one"):
        mlflow.parse(b"{}")


def test_v2_json_tensor() -> None:
    body = {"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    request = v2.parse(orjson.dumps(body), None)
    assert request.id == "r1"
    assert isinstance(request.payload, Tensor)
    assert to_matrix(request.payload, SCHEMA).tolist() == [[1, 2], [3, 4]]
    assert request.outputs == (("predict", False), ("probabilities", False))


def test_v2_binary_tensor_after_the_json_header() -> None:
    rows = np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float64)
    head = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "parameters": {"binary_data_size": rows.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    )
    request = v2.parse(head + rows.tobytes(), str(len(head)))
    assert to_matrix(request.payload, SCHEMA).tolist() == rows.tolist()
    body, header_length = v2.render(request, "team.ep", served(2), [0, 1], [[0.9, 0.1], [0.2, 0.8]])
    assert header_length is not None
    answer = orjson.loads(body[:header_length])
    assert answer["model_version"] == "2"
    sizes = [o["parameters"]["binary_data_size"] for o in answer["outputs"]]
    predict = np.frombuffer(body[header_length : header_length + sizes[0]], dtype="<i8")
    assert predict.tolist() == [0, 1]


def test_v2_columns_as_separate_inputs() -> None:
    inputs = [
        {"name": "a", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "b", "shape": [2, 1], "datatype": "FP64", "data": [3, 4]},
    ]
    assert isinstance(v2.parse(orjson.dumps({"inputs": inputs}), None).payload, Columns)


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        ({"shape": [1, 2], "datatype": "FP99", "data": [1, 2]}, "datatype"),
        ({"shape": [1, 3], "datatype": "FP32", "data": [1, 2]}, "needs 3"),
        ({"shape": "1x2", "datatype": "FP32", "data": [1, 2]}, "shape"),
        ({"shape": [1, 2], "datatype": "FP32", "data": ["a", "b"]}, "strings"),
        ({"shape": [1, 2], "datatype": "INT64", "data": [1.5, 2]}, "floats"),
        ({"shape": [1, 2], "datatype": "FP32"}, "neither"),
        ({"shape": [1, 2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}, "binary"),
    ],
)
def test_v2_bad_tensors(tensor: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        v2.parse(orjson.dumps({"inputs": [{"name": "x", **tensor}]}), None)


def test_v2_unknown_output_and_bad_header_length() -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "logits"}]}
    with pytest.raises(InvalidInput, match="predict, probabilities"):
        v2.parse(orjson.dumps(body), None)
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length"):
        v2.parse(b"{}", "999")
