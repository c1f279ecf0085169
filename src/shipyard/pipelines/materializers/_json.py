"""JSON-able values (dicts, lists, tuples, strings, numbers, booleans, None) through orjson."""

from __future__ import annotations

import math
import sys
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.materializers._base import Materializer, type_name


class Json(Materializer):
    name = "json"
    media_type = "application/json"

    def handles(self, value: Any) -> bool:
        problem = json_problem(value, "value", 0)
        return problem is None or problem[0] == "value"

    def dump(self, value: Any) -> bytes:
        import orjson

        problem = json_problem(value, "value", 0)
        if problem is not None:
            raise InvalidInput(f"step output is not valid JSON: {problem[1]}")
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY, default=_json_default)

    def load(self, data: bytes) -> Any:
        import orjson

        return orjson.loads(data)

    def describe(self, value: Any) -> dict[str, Any]:
        facts: dict[str, Any] = {"type": type(value).__name__}
        if isinstance(value, dict):
            facts.update(length=len(value), keys=sorted(value)[:50])
        elif isinstance(value, list | tuple):
            facts["length"] = len(value)
        elif not isinstance(value, str) or len(value) <= 200:
            facts["value"] = value.item() if hasattr(value, "item") else value  # numpy scalars as Python ones
        return facts


_MAX_JSON_DEPTH = 200  # orjson stops at 255; a cycle stops here with a clear message


def json_problem(value: Any, where: str, depth: int) -> tuple[str, str] | None:
    """The first reason ``value`` is not JSON: ``("type", why)`` or ``("value", why)`` for NaN and huge ints."""
    if depth > _MAX_JSON_DEPTH:
        return "type", f"{where} is nested more than {_MAX_JSON_DEPTH} levels deep (a cycle?)"
    if value is None or isinstance(value, str | bool):
        return None
    np = sys.modules.get("numpy")
    if isinstance(value, int) or (np is not None and isinstance(value, np.integer)):
        ok = -(2**63) <= int(value) < 2**64
        return None if ok else ("value", f"{where} is {value}, beyond the 64-bit range JSON readers keep: store it as a string")
    if isinstance(value, float) or (np is not None and isinstance(value, np.floating | np.bool_)):
        ok = math.isfinite(float(value))
        return None if ok else ("value", f"{where} is {value}: JSON has no NaN or infinity, use None or a string")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "type", f"{where} has the key {key!r} of type {type(key).__name__}: JSON keys must be strings"
            problem = json_problem(item, f"{where}[{key!r}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    return "type", f"{where} is a {type_name(value)}"


def _json_default(value: Any) -> Any:
    """orjson takes exact tuples and floats only; subclasses (namedtuples) pass through here."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"{type_name(value)} is not JSON-able")
