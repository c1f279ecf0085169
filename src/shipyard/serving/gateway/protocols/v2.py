"""KServe V2 / Open Inference Protocol (REST), with the binary tensor extension.

Requests carry ``inputs``: one 2-D tensor of shape [rows, features], or one 1-D tensor
per column. Tensor data come as JSON (flat or nested) or, as ``tritonclient`` sends them
by default, as raw little-endian bytes after the JSON header, whose length is given in
the ``Inference-Header-Content-Length`` header. Answers have the outputs ``predict``
and, for classifiers, ``probabilities``; in binary when the request asks for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shipyard.errors import InvalidInput
from shipyard.serving.gateway.models import ServedModel
from shipyard.serving.gateway.validation import Columns, Payload, Tensor, parse_json, require_object

HEADER_LENGTH = "inference-header-content-length"
OUTPUTS = ("predict", "probabilities")
EXAMPLE = '{"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64", "data": [...]}]}'

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
_SIGNATURE_TYPES = {"double": "FP64", "float": "FP32", "long": "INT64", "integer": "INT32", "boolean": "BOOL", "string": "BYTES"}


@dataclass(frozen=True, slots=True)
class InferRequest:
    payload: Payload
    id: str | None
    outputs: tuple[tuple[str, bool], ...]  # (name, binary)


def parse(body: bytes, header_length: str | None) -> InferRequest:
    head, binary = _split(body, header_length)
    data = require_object(parse_json(head), EXAMPLE)
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(f'"inputs" is missing or empty: expected {EXAMPLE}')
    arrays: list[tuple[str, np.ndarray[Any, Any]]] = []
    offset = 0
    for i, spec in enumerate(inputs):
        array, offset = _tensor(spec, i, binary, offset)
        arrays.append((str(spec.get("name", f"input{i}")), array))
    if offset != len(binary):
        raise InvalidInput(f"the body has {len(binary) - offset} byte(s) of tensor data that no input claims")
    binary_default = bool((data.get("parameters") or {}).get("binary_data_output", False))
    request_id = data.get("id")
    return InferRequest(
        payload=_payload(arrays),
        id=str(request_id) if request_id is not None else None,
        outputs=_outputs(data.get("outputs"), binary_default),
    )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise InvalidInput(f"Inference-Header-Content-Length is {header_length!r}: expected 1 to {len(body)}, the JSON length")
    return body[:length], body[length:]


def _tensor(spec: Any, i: int, binary: bytes, offset: int) -> tuple[np.ndarray[Any, Any], int]:
    where = f"inputs[{i}]"
    if not isinstance(spec, dict):
        raise InvalidInput(f"{where} is not an object: expected {EXAMPLE}")
    datatype = spec.get("datatype")
    if datatype not in DTYPES:
        raise InvalidInput(f"{where}.datatype is {datatype!r}: expected one of {', '.join(DTYPES)}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(f"{where}.shape is {shape!r}: expected a list of non-negative integers, e.g. [1, 30]")
    count = math.prod(shape)
    dtype = np.dtype(DTYPES[datatype]).newbyteorder("<")
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != count * dtype.itemsize or offset + size > len(binary):
            raise InvalidInput(
                f"{where} claims {size!r} byte(s) of binary data: shape {shape} of {datatype} needs {count * dtype.itemsize}"
                f", and {len(binary) - offset} are left in the body"
            )
        array = np.frombuffer(binary, dtype=dtype, count=count, offset=offset)
        return array.reshape(shape), offset + size
    if "data" not in spec:
        raise InvalidInput(f'{where} has neither "data" nor parameters.binary_data_size')
    try:
        values = np.array(spec["data"])
    except ValueError:
        raise InvalidInput(f"{where}.data is ragged: expected {count} values for shape {shape}") from None
    if values.size != count:
        raise InvalidInput(f"{where}.data has {values.size} value(s): shape {shape} needs {count}")
    expected = "b" if datatype == "BOOL" else "iuf" if datatype.startswith("FP") else "iu"
    if values.size and values.dtype.kind not in expected:
        raise InvalidInput(f"{where}.data holds {_kind(values)}: expected {datatype} values")
    return values.astype(dtype, copy=False).reshape(shape), offset


def _payload(arrays: Sequence[tuple[str, np.ndarray[Any, Any]]]) -> Payload:
    if len(arrays) == 1:
        return Tensor(arrays[0][1], "inputs[0]")
    columns: dict[str, Any] = {}
    for i, (name, array) in enumerate(arrays):
        column = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
        if column.ndim != 1:
            raise InvalidInput(f"inputs[{i}] has shape {list(array.shape)}: with several inputs, each is one column [rows]")
        columns[name] = column.tolist()
    return Columns(columns, "inputs")


def _outputs(requested: Any, binary_default: bool) -> tuple[tuple[str, bool], ...]:
    if requested is None:
        return tuple((name, binary_default) for name in OUTPUTS)
    if not isinstance(requested, list):
        raise InvalidInput('"outputs" is not a list: expected [{"name": "predict"}, ...]')
    chosen: list[tuple[str, bool]] = []
    for i, spec in enumerate(requested):
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in OUTPUTS:
            raise InvalidInput(f"outputs[{i}].name is {name!r}: expected one of {', '.join(OUTPUTS)}")
        binary = (spec.get("parameters") or {}).get("binary_data", binary_default)
        chosen.append((name, bool(binary)))
    return tuple(chosen)


# -- answers ------------------------------------------------------------------------


def render(
    request: InferRequest,
    model_name: str,
    served: ServedModel,
    predictions: list[Any],
    probabilities: list[list[float]] | None,
) -> tuple[bytes, int | None]:
    """The body and, when some output is binary, the length of its JSON part."""
    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in request.outputs:
        if name == "predict":
            array = np.asarray(predictions)
        elif probabilities is not None:
            array = np.asarray(probabilities, dtype=np.float64)
        else:
            continue  # a regressor has no probabilities to give
        datatype = _datatype(array)
        output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            blob = _to_bytes(array, datatype)
            output["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            output["data"] = array.reshape(-1).tolist()
        outputs.append(output)
    answer: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(served.version),
        "parameters": {"model": served.model},
        "outputs": outputs,
    }
    if request.id is not None:
        answer["id"] = request.id
    head = orjson.dumps(answer)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


def metadata(model_name: str, served: ServedModel, versions: Sequence[int]) -> bytes:
    schema = served.schema
    inputs: dict[str, Any] = {
        "name": "input",
        "datatype": _SIGNATURE_TYPES.get(schema.dtype if schema.types is None else "double", "FP64"),
        "shape": [-1, schema.width if schema.width is not None else -1],
    }
    if schema.names is not None:
        inputs["parameters"] = {"columns": list(schema.names)}
    output_spec: Mapping[str, Any] = served.signature.get("outputs") or {}
    outputs = [{"name": "predict", "datatype": _SIGNATURE_TYPES.get(str(output_spec.get("dtype", "")), "FP64"), "shape": [-1]}]
    if served.predictor.has_proba:
        classes = served.predictor.classes
        outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes) if classes else -1]})
    return orjson.dumps(
        {
            "name": model_name,
            "versions": [str(v) for v in versions],
            "platform": served.platform,
            "inputs": [inputs],
            "outputs": outputs,
        }
    )


def _datatype(array: np.ndarray[Any, Any]) -> str:
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def _to_bytes(array: np.ndarray[Any, Any], datatype: str) -> bytes:
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then its UTF-8 bytes
        parts: list[bytes] = []
        for value in array.reshape(-1).tolist():
            encoded = str(value).encode()
            parts += [len(encoded).to_bytes(4, "little"), encoded]
        return b"".join(parts)
    dtype = np.dtype(DTYPES[datatype]).newbyteorder("<")
    return array.astype(dtype, copy=False).tobytes()


def _kind(values: np.ndarray[Any, Any]) -> str:
    return {"U": "strings", "S": "bytes", "O": "mixed values or nulls", "b": "booleans", "f": "floats"}.get(
        values.dtype.kind, str(values.dtype)
    )
