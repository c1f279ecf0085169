"""The event log: things that happened, which schedules' triggers react to.

Domain services append events in the same transaction as the change they describe (a
pipeline run finishing), so an event exists exactly when its change does. Callers with
write access may append events of the open kinds themselves: a new dataset version
written by a pipeline step or a data job, an alert raised by a monitor. Event ids only
grow, so a reader keeps the last id it has handled and asks for those after it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput
from shipyard.store.models import PlatformEvent, now_ms

PIPELINE_FINISHED = "pipeline.finished"  # subject: the pipeline's name; payload: run_id, status
DATASET_VERSION = "dataset.version"  # subject: the dataset's name; payload: version, digest, ...
ALERT_FIRED = "alert.fired"  # subject: the alert's name; payload: endpoint, feature, value, ...
KINDS = (ALERT_FIRED, DATASET_VERSION, PIPELINE_FINISHED)
OPEN_KINDS = (ALERT_FIRED, DATASET_VERSION)  # those the API accepts from callers
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAGE = 1000

_SUBJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@/\[\]-]{0,254}$")


def check_kind(kind: Any, allowed: tuple[str, ...] = KINDS) -> str:
    if kind not in allowed:
        raise InvalidInput(f"event kind {kind!r} is unknown: expected one of {', '.join(allowed)}")
    return str(kind)


def check_subject(subject: Any) -> str:
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise InvalidInput(
            f"event subject {subject!r} is not valid: expected 1-255 letters, digits or _ . : @ / - "
            "(the name of the pipeline, dataset or alert), e.g. 'catalogue'"
        )
    return subject


def append(
    session: Session, namespace: str, kind: str, subject: str, payload: Mapping[str, Any] | None, created_by: str
) -> PlatformEvent:
    """Record an event inside the caller's transaction (no access check: the change it describes had one)."""
    event = PlatformEvent(
        namespace=namespace,
        kind=check_kind(kind),
        subject=check_subject(subject),
        payload=dict(payload) if payload is not None else None,
        created_at=now_ms(),
        created_by=created_by,
    )
    session.add(event)
    session.flush()
    return event


def emit(
    session: Session, caller: Caller, namespace: str, kind: str, subject: str, payload: Mapping[str, Any] | None = None
) -> PlatformEvent:
    """An event a caller reports: a dataset version it wrote, an alert it raised."""
    namespaces.require_exists(session, caller, namespace, Action.WRITE)
    check_kind(kind, OPEN_KINDS)
    if payload is not None and not isinstance(payload, Mapping):
        raise InvalidInput(f"event payload is a {type(payload).__name__}: expected a JSON object")
    if payload is not None and len(repr(payload)) > MAX_PAYLOAD_BYTES:
        raise InvalidInput(f"event payload is over {MAX_PAYLOAD_BYTES // 1024} KiB: keep payloads to names, versions and digests")
    return append(session, namespace, kind, subject, payload, caller.name)


def list_events(
    session: Session,
    caller: Caller,
    namespace: str,
    *,
    kind: str | None = None,
    subject: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[PlatformEvent]:
    """Events with ``id > after``, oldest first."""
    namespaces.require_exists(session, caller, namespace, Action.READ)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit!r} is not valid: expected a whole number from 1 to {MAX_PAGE}")
    query = select(PlatformEvent).where(PlatformEvent.namespace == namespace, PlatformEvent.id > after)
    if kind is not None:
        query = query.where(PlatformEvent.kind == check_kind(kind))
    if subject is not None:
        query = query.where(PlatformEvent.subject == subject)
    return list(session.scalars(query.order_by(PlatformEvent.id).limit(limit)))


def after(session: Session, cursor: int, *, limit: int = MAX_PAGE) -> list[PlatformEvent]:
    """Every namespace's events after ``cursor`` (for the scheduler, which runs as the platform)."""
    query = select(PlatformEvent).where(PlatformEvent.id > cursor).order_by(PlatformEvent.id).limit(limit)
    return list(session.scalars(query))


def last_id(session: Session) -> int:
    found = session.scalar(select(PlatformEvent.id).order_by(PlatformEvent.id.desc()).limit(1))
    return int(found or 0)
