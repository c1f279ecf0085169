"""The event log: report a dataset version or an alert, and read what happened (triggers react to it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from shipyard import events
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import MAX_INT64, EventIn, EventKind, EventOut

router = APIRouter(tags=["events"])
EVENTS = "/namespaces/{namespace}/events"


@router.post(EVENTS, response_model=EventOut, status_code=status.HTTP_201_CREATED, summary="Report a dataset version or alert")
def emit_event(namespace: str, body: EventIn, platform: PlatformDep, caller: CallerDep) -> EventOut:
    with platform.db.session(write=True) as session:
        event = events.emit(session, caller, namespace, body.kind, body.subject, body.payload)
        return EventOut.model_validate(event)


@router.get(EVENTS, response_model=list[EventOut], summary="Events after the id 'after', oldest first")
def list_events(
    namespace: str,
    platform: PlatformDep,
    caller: CallerDep,
    kind: EventKind | None = None,
    subject: Annotated[str | None, Query(max_length=255)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE)] = 100,
) -> list[EventOut]:
    with platform.db.session() as session:
        found = events.list_events(session, caller, namespace, kind=kind, subject=subject, after=after, limit=limit)
        return [EventOut.model_validate(event) for event in found]
