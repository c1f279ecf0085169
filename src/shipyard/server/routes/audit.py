"""The audit log, for platform admins (everything) and namespace admins (their namespace)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from shipyard.access import audit
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import AuditEventOut

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[AuditEventOut], summary="Audit events, newest first")
def list_audit_events(
    platform: PlatformDep,
    caller: CallerDep,
    namespace: Annotated[str | None, Query(max_length=63)] = None,
    principal: Annotated[str | None, Query(max_length=255)] = None,
    outcome: Annotated[Literal["allowed", "denied", "failed"] | None, Query()] = None,
    since: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Milliseconds since the epoch")] = None,
    before_id: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Page: events older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventOut]:
    with platform.db.session() as session:
        events = audit.query(
            session,
            caller,
            namespace=namespace,
            principal=principal,
            outcome=outcome,
            since_ms=since,
            before_id=before_id,
            limit=limit,
        )
        return [AuditEventOut.model_validate(e) for e in events]
