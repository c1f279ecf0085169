"""MLflow scoring (``/invocations``): ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``."""

from __future__ import annotations

from typing import Any

import orjson

from shipyard.errors import InvalidInput
from shipyard.serving.gateway.validation import Payload, Records, Split, parse_json, payload_of, require_object

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
EXAMPLE = '{"dataframe_split": {"columns": [...], "data": [[...]]}}'


def parse(body: bytes) -> Payload:
    data = require_object(parse_json(body), EXAMPLE)
    given = [key for key in KEYS if key in data]
    if len(given) != 1:
        raise InvalidInput(f"the body has {given or 'none'} of {', '.join(KEYS)}: expected exactly one, e.g. {EXAMPLE}")
    key = given[0]
    values = data[key]
    if key == "dataframe_split":
        if not isinstance(values, dict) or "data" not in values:
            raise InvalidInput(f'dataframe_split is not an object with "data": expected {EXAMPLE}')
        return Split(values.get("columns"), values["data"], key)
    if key == "dataframe_records":
        if not isinstance(values, list):
            raise InvalidInput('dataframe_records is not a list: expected [{"column": value}, ...]')
        return Records(values, key)
    return payload_of(values, key)


def render(predictions: list[Any]) -> bytes:
    return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
