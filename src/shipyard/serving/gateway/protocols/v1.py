"""Vertex AI / KServe V1: ``{"instances": [...]}`` in, ``{"predictions": [...]}`` out."""

from __future__ import annotations

from typing import Any

import orjson

from shipyard.errors import InvalidInput
from shipyard.serving.gateway.validation import Payload, parse_json, payload_of, require_object

EXAMPLE = '{"instances": [[1.0, 2.0], ...]} or {"instances": [{"column": 1.0}, ...]}'


def parse(body: bytes) -> Payload:
    data = require_object(parse_json(body), EXAMPLE)
    if "instances" not in data:
        raise InvalidInput(f'the body has no "instances": expected {EXAMPLE}')
    return payload_of(data["instances"], "instances")


def render(predictions: list[Any], model_version: str, deployed_model_id: str) -> bytes:
    return orjson.dumps(
        {"predictions": predictions, "model_version": model_version, "deployed_model_id": deployed_model_id},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
