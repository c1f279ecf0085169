"""Schedules: desired state that says when a pipeline runs by itself.

A schedule names a pipeline (``MODULE:NAME`` or ``FILE.py:NAME``, imported from its
``workdir``), its parameters, executor and queue priority, and when to run it: a cron
expression in a time zone, an event (a dataset version, an alert firing, another pipeline
finishing), or both. The scheduler loop (``scheduler``) turns them into runs; each firing
is a ``ScheduleFire`` record whose unique key (the due time, or the event id) makes it
happen at most once, whatever restarts.

Runs of a schedule act as the principal who last wrote it, with a token limited to its
namespace and to read and write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import events
from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.names import dns_label
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.models import Schedule, ScheduleFire, now_ms

EXECUTORS = ("local", "ray")
FINISH_STATUSES = ("succeeded", "failed", "cancelled")
MAX_LIST = 1000
MAX_INT32 = 2**31 - 1
_TARGET = re.compile(r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")


# -- validation ------------------------------------------------------------------------


def check_name(name: Any) -> str:
    return dns_label(name, "schedule name", "nightly-retrain")


def zone(timezone: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"time zone {timezone!r} is unknown: expected an IANA name such as 'UTC' or 'Europe/Paris'") from exc


def check_cron(expression: Any) -> str:
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise InvalidInput(
            f"cron expression {expression!r} is not valid: expected five fields, minute hour day month weekday, "
            "e.g. '0 2 * * *' (02:00 every day) or '*/15 * * * *'"
        )
    if len(expression.split()) != 5:
        raise InvalidInput(f"cron expression {expression!r} has {len(expression.split())} fields: expected five")
    return expression


def _trigger(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInput(f"on_event is a {type(value).__name__}: expected {{'kind': ..., 'subject': ...}}")
    unknown = set(value) - {"kind", "subject", "status"}
    if unknown:
        raise InvalidInput(f"on_event has unknown fields {sorted(unknown)}: expected kind, subject and (for pipelines) status")
    kind = events.check_kind(value.get("kind"))
    trigger = {"kind": kind, "subject": events.check_subject(value.get("subject"))}
    status = value.get("status")
    if status is not None:
        if kind != events.PIPELINE_FINISHED or status not in FINISH_STATUSES:
            raise InvalidInput(
                f"on_event status {status!r} is not valid: only {events.PIPELINE_FINISHED} takes one, "
                f"of {', '.join(FINISH_STATUSES)}"
            )
        trigger["status"] = status
    elif kind == events.PIPELINE_FINISHED:
        trigger["status"] = "succeeded"
    return trigger


def next_due(cron: str, timezone: str, after_ms: int) -> int:
    """The first time strictly after ``after_ms`` that ``cron`` names, in ``timezone``, as epoch milliseconds."""
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(zone(timezone))
    found: datetime = croniter(cron, start).get_next(datetime)
    return int(found.timestamp() * 1000)


def latest_due(cron: str, timezone: str, at_ms: int) -> int:
    """The last time at or before ``at_ms`` that ``cron`` names."""
    start = datetime.fromtimestamp((at_ms + 1) / 1000, tz=UTC).astimezone(zone(timezone))
    found: datetime = croniter(cron, start).get_prev(datetime)
    return int(found.timestamp() * 1000)


# -- records ----------------------------------------------------------------------------


def put(
    session: Session,
    caller: Caller,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    now: int | None = None,
) -> Schedule:
    """Create the schedule, or replace it (``shipyard apply`` semantics). The next due time counts from now."""
    namespaces.require_exists(session, caller, namespace, Action.WRITE)
    check_name(name)
    unknown = set(spec) - {"pipeline", "workdir", "params", "executor", "priority", "cron", "timezone", "on_event", "enabled"}
    if unknown:
        raise InvalidInput(f"schedule fields {sorted(unknown)} are unknown")
    pipeline = spec.get("pipeline")
    if not isinstance(pipeline, str) or not _TARGET.match(pipeline) or len(pipeline) > 1024:
        raise InvalidInput(
            f"pipeline {pipeline!r} is not valid: expected MODULE:NAME or FILE.py:NAME, e.g. 'pipelines.train:quickstart'"
        )
    cron = check_cron(spec["cron"]) if spec.get("cron") is not None else None
    timezone = str(spec.get("timezone") or "UTC")
    zone(timezone)
    on_event = _trigger(spec.get("on_event"))
    if cron is None and on_event is None:
        raise InvalidInput("a schedule needs a cron expression, an on_event trigger, or both: give at least one")
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"params is a {type(params).__name__}: expected a JSON object of pipeline parameters")
    executor = spec.get("executor") or "local"
    if executor not in EXECUTORS:
        raise InvalidInput(f"executor {executor!r} is unknown: expected one of {', '.join(EXECUTORS)}")
    priority = spec.get("priority") or 0
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_INT32:
        raise InvalidInput(f"priority {priority!r} is not valid: expected a whole number")
    workdir = spec.get("workdir")
    if workdir is not None and (not isinstance(workdir, str) or not workdir.startswith("/")):
        raise InvalidInput(f"workdir {workdir!r} is not valid: expected an absolute path the pipeline imports from")
    moment = now if now is not None else now_ms()
    last_event = events.last_id(session)
    schedule = session.scalar(select(Schedule).where(Schedule.namespace == namespace, Schedule.name == name))
    if schedule is None:
        schedule = Schedule(
            namespace=namespace, name=name, created_at=moment, created_by=caller.name, run_as=caller.principal_id,
            event_cursor=last_event,
        )  # fmt: skip
        session.add(schedule)
    elif schedule.on_event != on_event:
        schedule.event_cursor = last_event  # a new trigger reacts to what happens from now on
    schedule.pipeline = pipeline
    schedule.workdir = workdir
    schedule.params = dict(params)
    schedule.executor = executor
    schedule.priority = priority
    schedule.cron, schedule.timezone, schedule.on_event = cron, timezone, on_event
    schedule.enabled = bool(spec.get("enabled", True))
    schedule.next_due_at = next_due(cron, timezone, moment) if cron is not None else None
    schedule.run_as = caller.principal_id
    schedule.updated_at = moment
    session.flush()
    return schedule


def get(session: Session, caller: Caller, namespace: str, name: str) -> Schedule:
    caller.require(Action.READ, namespace)
    found = session.scalar(select(Schedule).where(Schedule.namespace == namespace, Schedule.name == name))
    if found is None:
        raise NotFound(f"schedule {name!r} does not exist in namespace {namespace!r}")
    return found


def list_schedules(session: Session, caller: Caller, namespace: str) -> list[Schedule]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    return list(session.scalars(select(Schedule).where(Schedule.namespace == namespace).order_by(Schedule.name)))


def set_enabled(
    session: Session, caller: Caller, namespace: str, name: str, enabled: bool, *, now: int | None = None
) -> Schedule:
    """Pause or resume. Resuming counts the next due time from now: paused times are not made up."""
    caller.require(Action.WRITE, namespace)
    schedule = get(session, caller, namespace, name)
    if schedule.enabled != enabled:
        moment = now if now is not None else now_ms()
        schedule.enabled = enabled
        schedule.updated_at = moment
        if enabled:
            if schedule.cron is not None:
                schedule.next_due_at = next_due(schedule.cron, schedule.timezone, moment)
            schedule.event_cursor = events.last_id(session)
        session.flush()
    return schedule


def delete(session: Session, caller: Caller, namespace: str, name: str) -> None:
    caller.require(Action.WRITE, namespace)
    session.delete(get(session, caller, namespace, name))
    session.flush()


def fires(session: Session, caller: Caller, namespace: str, name: str, *, limit: int = 100) -> list[ScheduleFire]:
    """The schedule's firings, newest first."""
    schedule = get(session, caller, namespace, name)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit {limit!r} is not valid: expected a whole number from 1 to {MAX_LIST}")
    query = (
        select(ScheduleFire)
        .where(ScheduleFire.schedule_id == schedule.id)
        .order_by(ScheduleFire.created_at.desc(), ScheduleFire.due_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
