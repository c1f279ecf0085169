"""Retraining loops: an endpoint's closed loop (gate, canary, promotion or rollback) and its cycles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from shipyard.monitoring import retraining
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.store.models import RetrainingLoop

router = APIRouter(tags=["monitoring"])
LOOP = "/namespaces/{namespace}/endpoints/{name}/loop"


class LoopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=255, description="The registered model whose new versions are candidates.")
    alias: str = Field(default="production", description="Moved to the candidate when it is promoted.")
    gate: dict[str, Any] | None = Field(default=None, description="metric, min_improvement, data, min_samples, ...")
    canary: dict[str, Any] | None = Field(default=None, description="weight, soak_seconds, min_requests, max_error_rate, ...")
    enabled: bool = True


class CycleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    namespace: str
    model: str
    candidate_version: int
    baseline_version: int | None
    state: str
    reason: str
    canary_revision: int | None
    canary_since: int | None
    detail: dict[str, Any]
    started_at: int
    updated_at: int
    finished_at: int | None


class LoopOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    namespace: str
    endpoint: str
    spec: dict[str, Any]
    enabled: bool
    seen_version: int
    created_at: int
    created_by: str
    updated_at: int
    active_cycle: CycleOut | None = None


def _out(session: Session, loop: RetrainingLoop, endpoint: str) -> LoopOut:
    active = retraining.active_cycle(session, loop)
    out = LoopOut.model_validate(
        {**{k: getattr(loop, k) for k in LoopOut.model_fields if hasattr(loop, k)}, "endpoint": endpoint}
    )
    out.active_cycle = CycleOut.model_validate(active) if active is not None else None
    return out


@router.put(LOOP, response_model=LoopOut, summary="Create or replace the endpoint's retraining loop")
def put_loop(namespace: str, name: str, body: LoopIn, platform: PlatformDep, caller: CallerDep) -> LoopOut:
    spec = body.model_dump(exclude={"enabled"}, exclude_none=True)
    with platform.db.session(write=True) as session:
        loop = retraining.put(session, caller, namespace, name, spec, enabled=body.enabled)
        return _out(session, loop, name)


@router.get(LOOP, response_model=LoopOut, summary="The loop, with the cycle it is running now")
def get_loop(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> LoopOut:
    with platform.db.session() as session:
        return _out(session, retraining.get(session, caller, namespace, name), name)


@router.delete(LOOP, status_code=status.HTTP_204_NO_CONTENT)
def delete_loop(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        retraining.delete(session, caller, namespace, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(LOOP + "/cycles", response_model=list[CycleOut], summary="Candidates the loop has handled, newest first")
def list_cycles(
    namespace: str,
    name: str,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[CycleOut]:
    with platform.db.session() as session:
        return [CycleOut.model_validate(c) for c in retraining.cycles(session, caller, namespace, name, limit=limit)]
