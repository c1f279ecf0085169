"""Runs: lifecycle, params (immutable once set), tags, and batched logging."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import ImmutableValue, InvalidInput, NotFound
from shipyard.store.bulk import insert_rows
from shipyard.store.models import LatestMetric, Metric, Param, Run, RunTag, now_ms
from shipyard.tracking import experiments

STATUSES = ("running", "finished", "failed", "killed", "scheduled")
TERMINAL = ("finished", "failed", "killed")
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_BATCH_METRICS = 10_000
MAX_BATCH_PARAMS = 1000
MAX_BATCH_TAGS = 1000
_LARGEST_FLOAT = 1.7976931348623157e308  # infinities are stored as the largest finite double
_METRICS_TABLE = cast(Table, Metric.__table__)
_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]+$")


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int = 0
    timestamp: int | None = None


@dataclass
class Batch:
    metrics: Sequence[MetricPoint] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def validate_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not _KEY.match(key) or ".." in key.split("/"):
        raise InvalidInput(
            f"{what} key {key!r} is not valid: expected 1-{MAX_KEY_LENGTH} letters, digits, "
            "spaces or _ - . / : (e.g. 'val/accuracy')"
        )
    return key


def validate_status(status: str) -> str:
    if status not in STATUSES:
        raise InvalidInput(f"run status {status!r} is unknown: expected one of {', '.join(STATUSES)}")
    return status


def create(
    session: Session,
    caller: Caller,
    namespace: str,
    experiment_id: str,
    *,
    name: str = "",
    start_time: int | None = None,
    code_version: str = "",
    parent_run_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> Run:
    caller.require(Action.WRITE, namespace)
    experiment = experiments.get(session, caller, namespace, experiment_id)
    if experiment.lifecycle_stage != "active":
        raise InvalidInput(f"experiment {experiment.name!r} is deleted: restore it or log to another experiment")
    if parent_run_id is not None:
        get(session, caller, namespace, parent_run_id)
    run = Run(
        namespace=namespace,
        experiment_id=experiment.id,
        name=name,
        start_time=start_time if start_time is not None else now_ms(),
        code_version=code_version,
        parent_run_id=parent_run_id,
        created_by=caller.name,
    )
    session.add(run)
    session.flush()
    if tags:
        _set_tags(session, run, tags)
    return run


def get(session: Session, caller: Caller, namespace: str, run_id: str) -> Run:
    caller.require(Action.READ, namespace)
    run = session.get(Run, run_id)
    if run is None or run.namespace != namespace:
        raise NotFound(f"run {run_id!r} does not exist in namespace {namespace!r}")
    return run


def _writable(session: Session, caller: Caller, namespace: str, run_id: str) -> Run:
    caller.require(Action.WRITE, namespace)
    run = get(session, caller, namespace, run_id)
    if run.lifecycle_stage != "active":
        raise InvalidInput(f"run {run_id!r} is deleted: restore it before logging to it")
    return run


def update(
    session: Session,
    caller: Caller,
    namespace: str,
    run_id: str,
    *,
    status: str | None = None,
    end_time: int | None = None,
    name: str | None = None,
    lifecycle_stage: str | None = None,
) -> Run:
    caller.require(Action.WRITE, namespace)
    run = get(session, caller, namespace, run_id)
    if status is not None:
        run.status = validate_status(status)
        if status in TERMINAL:
            run.end_time = end_time if end_time is not None else now_ms()
        else:
            run.end_time = None
    elif end_time is not None:
        run.end_time = end_time
    if name is not None:
        run.name = name
    if lifecycle_stage is not None:
        if lifecycle_stage not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle stage {lifecycle_stage!r} is unknown: expected 'active' or 'deleted'")
        run.lifecycle_stage = lifecycle_stage
    return run


def log_batch(session: Session, caller: Caller, namespace: str, run_id: str, batch: Batch) -> None:
    """Write metrics, params and tags in one transaction: all of them or none."""
    run = _writable(session, caller, namespace, run_id)
    if len(batch.metrics) > MAX_BATCH_METRICS:
        raise InvalidInput(f"batch has {len(batch.metrics)} metrics: at most {MAX_BATCH_METRICS} per request")
    if len(batch.params) > MAX_BATCH_PARAMS or len(batch.tags) > MAX_BATCH_TAGS:
        raise InvalidInput(f"batch has too many params or tags: at most {MAX_BATCH_PARAMS} of each per request")
    if batch.params:
        _set_params(session, run, batch.params)
    if batch.tags:
        _set_tags(session, run, batch.tags)
    if batch.metrics:
        _add_metrics(session, run, batch.metrics)


def _validate_entries(entries: dict[str, str], what: str, max_length: int) -> None:
    for key, value in entries.items():
        validate_key(key, what)
        if not isinstance(value, str):
            raise InvalidInput(f"{what} {key!r} has a {type(value).__name__} value: expected a string")
        if len(value) > max_length:
            raise InvalidInput(f"{what} {key!r} is {len(value)} characters long: at most {max_length}")


def _set_params(session: Session, run: Run, params: dict[str, str]) -> None:
    _validate_entries(params, "param", MAX_PARAM_VALUE_LENGTH)
    existing = {p.key: p.value for p in session.scalars(select(Param).where(Param.run_id == run.id, Param.key.in_(list(params))))}
    for key, value in params.items():
        if key in existing:
            if existing[key] != value:
                raise ImmutableValue(
                    f"param {key!r} of run {run.id} is already {existing[key]!r} and cannot change to {value!r}: "
                    "params are immutable; log the new value under another key or start a new run"
                )
            continue
        session.add(Param(run_id=run.id, key=key, value=value))


def _set_tags(session: Session, run: Run, tags: dict[str, str]) -> None:
    _validate_entries(tags, "tag", MAX_TAG_VALUE_LENGTH)
    for key, value in tags.items():
        tag = session.get(RunTag, (run.id, key))
        if tag is None:
            session.add(RunTag(run_id=run.id, key=key, value=value))
        else:
            tag.value = value


def delete_tag(session: Session, caller: Caller, namespace: str, run_id: str, key: str) -> None:
    run = _writable(session, caller, namespace, run_id)
    tag = session.get(RunTag, (run.id, key))
    if tag is None:
        raise NotFound(f"run {run_id!r} has no tag {key!r}")
    session.delete(tag)


def _add_metrics(session: Session, run: Run, points: Sequence[MetricPoint]) -> None:
    now = now_ms()
    for key in {point.key for point in points}:  # batches repeat a few keys many times
        validate_key(key, "metric")
    run_id = run.id
    rows: list[tuple[str, str, float | None, int, int]] = []
    latest: dict[str, tuple[int, int, float | None]] = {}
    for point in points:
        number = float(point.value)
        value: float | None = number
        if math.isnan(number):
            value = None  # NaN (a diverged loss, say) is kept as NULL: SQLite has no NaN
        elif math.isinf(number):
            value = math.copysign(_LARGEST_FLOAT, number)
        timestamp = point.timestamp if point.timestamp is not None else now
        rows.append((run_id, point.key, value, point.step, timestamp))
        candidate = (point.step, timestamp, value)
        if point.key not in latest or candidate[:2] >= latest[point.key][:2]:
            latest[point.key] = candidate
    insert_rows(session, _METRICS_TABLE, ("run_id", "key", "value", "step", "timestamp"), rows)
    current = {
        m.key: m
        for m in session.scalars(select(LatestMetric).where(LatestMetric.run_id == run.id, LatestMetric.key.in_(list(latest))))
    }
    for key, (step, timestamp, value) in latest.items():
        row = current.get(key)
        if row is None:
            session.add(LatestMetric(run_id=run.id, key=key, value=value, step=step, timestamp=timestamp))
        elif (step, timestamp) >= (row.step, row.timestamp):
            row.value, row.step, row.timestamp = value, step, timestamp


def params_of(session: Session, run_id: str) -> dict[str, str]:
    return {p.key: p.value for p in session.scalars(select(Param).where(Param.run_id == run_id).order_by(Param.key))}


def tags_of(session: Session, run_id: str) -> dict[str, str]:
    return {t.key: t.value for t in session.scalars(select(RunTag).where(RunTag.run_id == run_id).order_by(RunTag.key))}


def latest_metrics_of(session: Session, run_id: str) -> list[LatestMetric]:
    return list(session.scalars(select(LatestMetric).where(LatestMetric.run_id == run_id).order_by(LatestMetric.key)))


def metric_history(
    session: Session, caller: Caller, namespace: str, run_id: str, key: str, *, limit: int = 100_000, after_id: int = 0
) -> list[Metric]:
    get(session, caller, namespace, run_id)
    if not 1 <= limit <= 100_000:
        raise InvalidInput(f"limit {limit} is out of range: expected 1 to 100000")
    return list(
        session.scalars(
            select(Metric)
            .where(Metric.run_id == run_id, Metric.key == key, Metric.id > after_id)
            .order_by(Metric.id)
            .limit(limit)
        )
    )
