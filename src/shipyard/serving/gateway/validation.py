"""Turn request payloads into the 2-D float array a model takes, checked against its signature.

Every protocol parses its body into one of four shapes (``Rows``, ``Records``,
``Columns``, ``Tensor``); ``to_matrix`` checks it against the model's ``InputSchema``.
Bad input always ends as ``InvalidInput`` naming the field and what was expected, never
as an error inside the model. The common case (a list of numeric rows) is one NumPy call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from shipyard.errors import InvalidInput

NUMERIC = frozenset({"double", "float", "long", "integer", "boolean"})
INTEGRAL = frozenset({"long", "integer"})
_MISSING = object()


@dataclass(frozen=True, slots=True)
class InputSchema:
    """What a model takes: ``width`` features, named when the signature has columns."""

    width: int | None
    names: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None
    nullable: tuple[bool, ...] | None = None
    dtype: str = "double"

    def type_of(self, index: int) -> str:
        return self.types[index] if self.types is not None else self.dtype

    def may_be_null(self, index: int) -> bool:
        return bool(self.nullable and self.nullable[index])

    def label(self, index: int) -> str:
        return repr(self.names[index]) if self.names is not None else f"feature {index}"


def schema_from_signature(signature: Mapping[str, Any] | None) -> InputSchema:
    """Read a registry signature (``registry.signature``); an unknown one checks only shapes."""
    inputs = (signature or {}).get("inputs") or {}
    if inputs.get("type") == "columns":
        columns = inputs.get("columns") or []
        return InputSchema(
            width=len(columns),
            names=tuple(str(c["name"]) for c in columns),
            types=tuple(str(c.get("type", "double")) for c in columns),
            nullable=tuple(bool(c.get("nullable", False)) for c in columns),
        )
    shape = inputs.get("shape") or []
    width = int(shape[1]) if len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0 else None
    dtype = str(inputs.get("dtype", "double"))
    return InputSchema(width=width, dtype=dtype if dtype in NUMERIC else "double")


# -- payload shapes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rows:
    """A list of rows, each a list of values."""

    values: Sequence[Any]
    field: str


@dataclass(frozen=True, slots=True)
class Records:
    """A list of {column: value} objects."""

    values: Sequence[Any]
    field: str


@dataclass(frozen=True, slots=True)
class Columns:
    """{column: [values]}, or named 1-D tensors."""

    values: Mapping[str, Any]
    field: str


@dataclass(frozen=True, slots=True)
class Tensor:
    """An array already decoded by the protocol (V2 binary or typed data)."""

    array: np.ndarray[Any, Any]
    field: str


@dataclass(frozen=True, slots=True)
class Split:
    """Pandas ``split`` orientation: column names and rows of values."""

    columns: Sequence[Any] | None
    data: Sequence[Any]
    field: str


Payload = Rows | Records | Columns | Split | Tensor


def payload_of(values: Any, field: str) -> Payload:
    """Rows, records or columns, told apart by their JSON shape."""
    if isinstance(values, dict):
        return Columns(values, field)
    if isinstance(values, list) and values and isinstance(values[0], dict):
        return Records(values, field)
    if isinstance(values, list):
        return Rows(values, field)
    raise InvalidInput(f"{field} is {_describe(values)}: expected a list of rows, a list of objects, or an object of columns")


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON ({exc}): send a JSON object") from None


def require_object(body: Any, expected: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(f"the body is a JSON {_kind(body)}: expected an object like {expected}")
    return body


# -- checking -----------------------------------------------------------------------


def to_matrix(payload: Payload, schema: InputSchema) -> np.ndarray[Any, Any]:
    """A float64 array of shape (rows, width), or ``InvalidInput`` saying what is wrong where."""
    if isinstance(payload, Rows):
        matrix = _from_rows(payload.values, schema, payload.field)
    elif isinstance(payload, Records):
        matrix = _from_records(payload.values, schema, payload.field)
    elif isinstance(payload, Columns):
        matrix = _from_columns(payload.values, schema, payload.field)
    elif isinstance(payload, Split):
        matrix = _from_split(payload, schema)
    else:
        matrix = _from_tensor(payload.array, schema, payload.field)
    return matrix


def _from_rows(rows: Sequence[Any], schema: InputSchema, field: str) -> np.ndarray[Any, Any]:
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{field} is {_describe(rows)}: expected a non-empty list of rows")
    if not isinstance(rows[0], list) and schema.width == 1:
        rows = [[value] for value in rows]  # a single-feature model may take a flat list
    try:
        array = np.array(rows)
    except ValueError:  # ragged rows
        array = np.array([], dtype=object)
    if array.ndim == 2 and array.dtype.kind in "fiu":
        matrix = array.astype(np.float64, copy=False)
        _check_width(matrix.shape[1], schema, f"{field}[0]")
        _check_integral(matrix, schema, field)
        return matrix
    return _slow_rows(rows, schema, field)


def _slow_rows(rows: Sequence[Any], schema: InputSchema, field: str) -> np.ndarray[Any, Any]:
    """Value by value, so the error names the first bad one; also handles nulls and booleans."""
    out: list[list[float]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(f"{field}[{i}] is {_describe(row)}: expected a list of {schema.width or 'the'} feature values")
        if schema.width is None:  # rows must at least agree with each other
            schema = replace(schema, width=len(row))
        _check_width(len(row), schema, f"{field}[{i}]")
        out.append([_number(value, schema, j, f"{field}[{i}][{j}]") for j, value in enumerate(row)])
    return np.array(out, dtype=np.float64)


def _from_records(records: Sequence[Any], schema: InputSchema, field: str) -> np.ndarray[Any, Any]:
    names = _require_names(schema, field)
    if not isinstance(records, list) or not records:
        raise InvalidInput(f"{field} is {_describe(records)}: expected a non-empty list of objects")
    out: list[list[float]] = []
    known = frozenset(names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(f"{field}[{i}] is {_describe(record)}: expected an object of column values")
        extra = [key for key in record if key not in known]
        if extra:
            raise InvalidInput(f"{field}[{i}] has unknown column(s) {extra[:5]}: expected {_names(names)}")
        out.append([_number(record.get(name, _MISSING), schema, j, f"{field}[{i}].{name}") for j, name in enumerate(names)])
    return np.array(out, dtype=np.float64)


def _from_columns(columns: Mapping[str, Any], schema: InputSchema, field: str) -> np.ndarray[Any, Any]:
    names = _require_names(schema, field)
    extra = [key for key in columns if key not in frozenset(names)]
    if extra:
        raise InvalidInput(f"{field} has unknown column(s) {extra[:5]}: expected {_names(names)}")
    missing = [n for i, n in enumerate(names) if n not in columns and not schema.may_be_null(i)]
    if missing:
        raise InvalidInput(f"{field} lacks column(s) {missing[:5]}: every column of {_names(names)} is needed")
    lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
    if -1 in lengths or len(lengths) != 1 or 0 in lengths:
        raise InvalidInput(f"{field} holds columns of lengths {sorted(lengths)}: expected non-empty lists of one length")
    (count,) = lengths
    out = np.empty((count, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        values = columns.get(name, [None] * count)
        out[:, j] = [_number(v, schema, j, f"{field}.{name}[{i}]") for i, v in enumerate(values)]
    return out


def _from_split(split: Split, schema: InputSchema) -> np.ndarray[Any, Any]:
    columns = list(split.columns) if split.columns is not None else None
    if columns is None or schema.names is None or tuple(columns) == schema.names:
        return _from_rows(split.data, schema, f"{split.field}.data")
    if not isinstance(split.data, list):
        raise InvalidInput(f"{split.field}.data is {_describe(split.data)}: expected a list of rows")
    records: list[Any] = []
    for i, row in enumerate(split.data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InvalidInput(f"{split.field}.data[{i}] is {_describe(row)}: expected {len(columns)} values, one per column")
        records.append(dict(zip(columns, row, strict=True)))
    return _from_records(records, schema, f"{split.field}.data")


def _from_tensor(array: np.ndarray[Any, Any], schema: InputSchema, field: str) -> np.ndarray[Any, Any]:
    if array.ndim == 1 and schema.width == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInput(f"{field} has shape {list(array.shape)}: expected [rows, {schema.width or 'features'}]")
    if array.dtype.kind not in "fiub":
        raise InvalidInput(f"{field} holds {array.dtype} values: expected numbers")
    _check_width(array.shape[1], schema, field)
    matrix = array.astype(np.float64, copy=False)
    if array.dtype.kind == "f":
        bad = ~np.isfinite(matrix)
        if bad.any():
            for i, j in zip(*np.nonzero(bad), strict=True):
                if not (schema.may_be_null(int(j)) and math.isnan(matrix[i, j])):
                    raise InvalidInput(
                        f"{field}[{i}][{j}] ({schema.label(int(j))}) is {matrix[i, j]}: expected a finite number"
                        + ("" if schema.may_be_null(int(j)) else ", the signature says it is never null")
                    )
        _check_integral(matrix, schema, field)
    return matrix


# -- helpers ------------------------------------------------------------------------


def _number(value: Any, schema: InputSchema, index: int, where: str) -> float:
    kind = schema.type_of(index)
    if value is None or value is _MISSING:
        if schema.may_be_null(index):
            return math.nan
        said = "missing" if value is _MISSING else "null"
        raise InvalidInput(f"{where} is {said}: expected a {kind} ({schema.label(index)} is never null in the signature)")
    if isinstance(value, bool):
        if kind == "boolean":
            return float(value)
        raise InvalidInput(f"{where} is a boolean: expected a {kind}")
    if isinstance(value, int | float) and kind in NUMERIC:
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"{where} is {number}: expected a finite {kind}")
        if kind in INTEGRAL and not number.is_integer():
            raise InvalidInput(f"{where} is {value}: expected an integer ({kind})")
        return number
    if kind not in NUMERIC:
        raise InvalidInput(f"{where}: {schema.label(index)} is a {kind} column; this gateway serves numeric features only")
    raise InvalidInput(f"{where} is {_describe(value)}: expected a {kind}")


def _check_width(width: int, schema: InputSchema, where: str) -> None:
    if schema.width is not None and width != schema.width:
        named = f" ({_names(schema.names)})" if schema.names else ""
        raise InvalidInput(f"{where} has {width} value(s): expected {schema.width} features{named}")


def _check_integral(matrix: np.ndarray[Any, Any], schema: InputSchema, field: str) -> None:
    if schema.types is None:
        columns = list(range(matrix.shape[1])) if schema.dtype in INTEGRAL else []
    else:
        columns = [j for j, kind in enumerate(schema.types) if kind in INTEGRAL]
    if not columns:
        return
    part = matrix[:, columns]
    fractional = part != np.floor(part)
    if fractional.any():
        i, k = (int(x[0]) for x in np.nonzero(fractional))
        j = columns[k]
        raise InvalidInput(f"{field}[{i}][{j}] is {matrix[i, j]}: expected an integer ({schema.label(j)})")


def _require_names(schema: InputSchema, field: str) -> tuple[str, ...]:
    if schema.names is None:
        raise InvalidInput(f"{field} names columns, but this model's signature has none: send rows as lists of values")
    return schema.names


def _names(names: Sequence[str] | None) -> str:
    listed = list(names or [])
    return ", ".join(listed[:10]) + (f", ... ({len(listed)} in all)" if len(listed) > 10 else "")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def _describe(value: Any) -> str:
    kind = _kind(value)
    if kind == "string":
        return f"the string {str(value)[:40]!r}"
    if kind == "list" and not value:
        return "an empty list"
    return f"a {kind}" if kind != "null" else "null"
