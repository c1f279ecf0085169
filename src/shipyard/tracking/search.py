"""Run search: a small filter language over params, metrics, tags and attributes.

    metrics.accuracy > 0.9 and params.model = 'rf' and tags.team != 'b'
    attributes.status = 'finished' and params.`learning rate` LIKE '0.%'

Clauses are joined by ``and``. Metric filters compare each run's latest value as a
number; params, tags and string attributes compare as text. ``order_by`` takes the same
identifiers, each optionally followed by ``ASC`` or ``DESC``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import Session, aliased

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput
from shipyard.store.models import LatestMetric, Param, Run, RunTag

MAX_RESULTS = 1000
ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
ATTRIBUTES: dict[str, Any] = {
    "status": Run.status,
    "name": Run.name,
    "run_name": Run.name,
    "run_id": Run.id,
    "id": Run.id,
    "start_time": Run.start_time,
    "end_time": Run.end_time,
    "created_by": Run.created_by,
    "user_id": Run.created_by,
    "experiment_id": Run.experiment_id,
    "code_version": Run.code_version,
    "lifecycle_stage": Run.lifecycle_stage,
}
NUMERIC_ATTRIBUTES = {"start_time", "end_time"}
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "LIKE", "ILIKE")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_]+\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_\-./:]+))
      | (?P<op>!=|>=|<=|=|>|<|(?i:ILIKE)\b|(?i:LIKE)\b)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<and>(?i:AND)\b)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    op: str
    value: str | float


@dataclass(frozen=True)
class Order:
    entity: str
    key: str
    descending: bool


def _identifier(text: str) -> tuple[str, str]:
    entity, _, key = text.partition(".")
    canonical = ENTITIES.get(entity.lower())
    if canonical is None:
        raise InvalidInput(f"{entity!r} in {text!r} is not a searchable entity: expected metrics., params., tags. or attributes.")
    if key[:1] in '`"' and key[-1:] == key[:1]:
        key = key[1:-1]
    if canonical == "attributes" and key not in ATTRIBUTES:
        raise InvalidInput(f"attribute {key!r} is unknown: expected one of {', '.join(sorted(ATTRIBUTES))}")
    return canonical, key


def parse_filter(text: str | None) -> list[Clause]:
    if not text or not text.strip():
        return []
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidInput(
                f"cannot parse the filter at {text[position : position + 20]!r}: expected clauses like "
                "\"metrics.accuracy > 0.9 and params.model = 'rf'\""
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    clauses: list[Clause] = []
    index = 0
    while index < len(tokens):
        if index + 3 > len(tokens):
            raise InvalidInput(f"the filter {text!r} ends early: each clause is '<entity>.<key> <op> <value>'")
        (k1, ident), (k2, op), (k3, raw) = tokens[index : index + 3]
        if k1 != "ident" or k2 != "op" or k3 not in ("string", "number"):
            raise InvalidInput(
                f"clause {' '.join(t for _, t in tokens[index : index + 3])!r} is not of the form "
                "'<entity>.<key> <op> <value>' with a quoted string or a number as the value"
            )
        entity, key = _identifier(ident)
        value: str | float
        value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if k3 == "string" else float(raw)
        op = op.upper()
        if entity == "metrics" and not isinstance(value, float):
            raise InvalidInput(f"metric {key!r} is compared with {raw}: metric values are numbers, compare with a number")
        if entity == "metrics" and op in ("LIKE", "ILIKE"):
            raise InvalidInput(f"metric {key!r} cannot use {op}: use = != < <= > >=")
        clauses.append(Clause(entity, key, op, value))
        index += 3
        if index < len(tokens):
            if tokens[index][0] != "and":
                raise InvalidInput(f"expected 'and' between clauses, got {tokens[index][1]!r}")
            index += 1
            if index == len(tokens):
                raise InvalidInput("the filter ends with 'and': add a clause after it or remove it")
    return clauses


def parse_order_by(items: Sequence[str] | None) -> list[Order]:
    orders: list[Order] = []
    for item in items or []:
        parts = item.strip().rsplit(None, 1)
        descending = False
        target = item.strip()
        if len(parts) == 2 and parts[1].upper() in ("ASC", "DESC"):
            descending = parts[1].upper() == "DESC"
            target = parts[0]
        if "." not in target:
            target = f"attributes.{target}"
        entity, key = _identifier(target.strip())
        orders.append(Order(entity, key, descending))
    return orders


def _compare(column: Any, op: str, value: str | float) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    return column.ilike(value)  # type: ignore[no-any-return]


def _clause_condition(clause: Clause) -> ColumnElement[bool]:
    if clause.entity == "attributes":
        value = clause.value
        if clause.key in NUMERIC_ATTRIBUTES:
            if not isinstance(value, float):
                raise InvalidInput(f"attribute {clause.key!r} is a time in milliseconds: compare it with a number")
            value = int(value)
        elif isinstance(value, float):
            raise InvalidInput(f"attribute {clause.key!r} is text: compare it with a quoted string")
        return _compare(ATTRIBUTES[clause.key], clause.op, value)
    if clause.entity == "metrics":
        sub = select(LatestMetric.run_id).where(
            LatestMetric.key == clause.key, _compare(LatestMetric.value, clause.op, clause.value)
        )
        return Run.id.in_(sub)
    model = Param if clause.entity == "params" else RunTag
    text_value = clause.value if isinstance(clause.value, str) else _format_number(clause.value)
    sub = select(model.run_id).where(model.key == clause.key, _compare(model.value, clause.op, text_value))
    return Run.id.in_(sub)


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput("page token is not valid: pass the next_page_token of a previous answer unchanged") from None
    if not isinstance(offset, int) or not 0 <= offset < 2**62:
        raise InvalidInput("page token is not valid: pass the next_page_token of a previous answer unchanged")
    return offset


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_page_token: str | None


def search(
    session: Session,
    caller: Caller,
    namespace: str,
    *,
    experiment_ids: Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    include_deleted: bool = False,
) -> RunPage:
    caller.require(Action.READ, namespace)
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"max_results {max_results} is out of range: expected 1 to {MAX_RESULTS}")
    offset = decode_page_token(page_token)
    stmt: Select[Run] = select(Run).where(Run.namespace == namespace)
    if experiment_ids:
        stmt = stmt.where(Run.experiment_id.in_(list(experiment_ids)))
    if not include_deleted:
        stmt = stmt.where(Run.lifecycle_stage == "active")
    conditions = [_clause_condition(c) for c in parse_filter(filter)]
    if conditions:
        stmt = stmt.where(and_(*conditions))
    for number, order in enumerate(parse_order_by(order_by)):
        column: Any
        if order.entity == "attributes":
            column = ATTRIBUTES[order.key]
        else:
            model: Any = {"metrics": LatestMetric, "params": Param, "tags": RunTag}[order.entity]
            joined = aliased(model, name=f"order_{number}")
            stmt = stmt.outerjoin(joined, and_(joined.run_id == Run.id, joined.key == order.key))
            column = joined.value
        # Runs without the key sort last in either direction.
        stmt = stmt.order_by(column.is_(None), column.desc() if order.descending else column.asc())
    stmt = stmt.order_by(Run.start_time.desc(), Run.id).offset(offset).limit(max_results + 1)
    runs = list(session.scalars(stmt))
    next_token = encode_page_token(offset + max_results) if len(runs) > max_results else None
    return RunPage(runs[:max_results], next_token)
