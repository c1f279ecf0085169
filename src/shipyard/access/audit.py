"""The audit log: every mutating request and every denial, queryable by admins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, PermissionDenied
from shipyard.store.models import AuditEvent

OUTCOMES = ("allowed", "denied", "failed")
MAX_PAGE = 1000


@dataclass(frozen=True)
class EventDraft:
    principal: str
    action: str
    method: str
    path: str
    namespace: str
    status_code: int
    message: str = ""
    denied: bool = False

    @property
    def outcome(self) -> str:
        if self.denied or self.status_code in (401, 403):
            return "denied"
        if self.status_code >= 400:
            return "failed"
        return "allowed"


def record(session: Session, draft: EventDraft) -> AuditEvent:
    event = AuditEvent(
        principal=draft.principal,
        action=draft.action,
        method=draft.method,
        path=draft.path[:2000].replace("\x00", "\\x00"),  # PostgreSQL text cannot hold NUL
        namespace=draft.namespace,
        status_code=draft.status_code,
        outcome=draft.outcome,
        message=draft.message[:2000].replace("\x00", "\\x00"),
    )
    session.add(event)
    return event


def query(
    session: Session,
    caller: Caller,
    *,
    namespace: str | None = None,
    principal: str | None = None,
    outcome: str | None = None,
    since_ms: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Newest first. Platform admins see everything; namespace admins their namespace."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit} is out of range: expected 1 to {MAX_PAGE}")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome {outcome!r} is unknown: expected one of {', '.join(OUTCOMES)}")
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if not caller.is_platform_admin:
        if namespace is None:
            raise PermissionDenied("only a platform admin may read the whole audit log: pass a namespace you administer")
        caller.require(Action.ADMIN, namespace)
    if namespace is not None:
        stmt = stmt.where(AuditEvent.namespace == namespace)
    if principal is not None:
        stmt = stmt.where(AuditEvent.principal == principal)
    if outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if since_ms is not None:
        stmt = stmt.where(AuditEvent.time >= since_ms)
    if before_id is not None:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(session.scalars(stmt))
