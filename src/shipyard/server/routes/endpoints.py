"""Serving endpoints: audience, deployment revisions, traffic, rollback."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import EndpointDetail, EndpointIn, EndpointOut, EndpointPatch, RevisionIn, RevisionOut
from shipyard.serving import endpoints, revisions
from shipyard.serving.revisions import RevisionSpec
from shipyard.store.models import Endpoint

router = APIRouter(tags=["endpoints"])
ENDPOINT = "/namespaces/{namespace}/endpoints/{name}"


def _detail(session: Session, endpoint: Endpoint) -> EndpointDetail:
    current = revisions.current(session, endpoint)
    return EndpointDetail(
        **EndpointOut.model_validate(endpoint).model_dump(),
        current=RevisionOut.model_validate(current) if current is not None else None,
    )


@router.get("/namespaces/{namespace}/endpoints", response_model=list[EndpointDetail])
def list_endpoints(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[EndpointDetail]:
    with platform.db.session() as session:
        return [_detail(session, e) for e in endpoints.list_in(session, caller, namespace)]


@router.post("/namespaces/{namespace}/endpoints", response_model=EndpointDetail, status_code=status.HTTP_201_CREATED)
def create_endpoint(namespace: str, body: EndpointIn, platform: PlatformDep, caller: CallerDep) -> EndpointDetail:
    with platform.db.session(write=True) as session:
        created = endpoints.create(
            session, caller, namespace, body.name, description=body.description, audience=body.audience.model_dump()
        )
        return _detail(session, created)


@router.get(ENDPOINT, response_model=EndpointDetail)
def get_endpoint(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> EndpointDetail:
    with platform.db.session() as session:
        return _detail(session, endpoints.get(session, caller, namespace, name))


@router.patch(ENDPOINT, response_model=EndpointDetail, summary="Change the description or the audience")
def update_endpoint(namespace: str, name: str, body: EndpointPatch, platform: PlatformDep, caller: CallerDep) -> EndpointDetail:
    audience = body.audience.model_dump() if body.audience is not None else None
    with platform.db.session(write=True) as session:
        updated = endpoints.update(session, caller, namespace, name, description=body.description, audience=audience)
        return _detail(session, updated)


@router.delete(ENDPOINT, status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> None:
    with platform.db.session(write=True) as session:
        endpoints.delete(session, caller, namespace, name)


@router.get(ENDPOINT + "/revisions", response_model=list[RevisionOut])
def list_revisions(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> list[RevisionOut]:
    with platform.db.session() as session:
        return [RevisionOut.model_validate(r) for r in revisions.list_for(session, caller, namespace, name)]


@router.post(
    ENDPOINT + "/revisions",
    response_model=RevisionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Deploy: a new revision with routes (weights add up to 100), shadow and replicas",
)
def create_revision(namespace: str, name: str, body: RevisionIn, platform: PlatformDep, caller: CallerDep) -> RevisionOut:
    spec = RevisionSpec(
        routes=[r.model_dump(exclude_none=True) for r in body.routes],
        shadow=body.shadow.model_dump(exclude_none=True) if body.shadow is not None else None,
        replicas_min=body.replicas.min,
        replicas_max=body.replicas.max,
        sticky_header=body.sticky_header,
    )
    with platform.db.session(write=True) as session:
        return RevisionOut.model_validate(revisions.create(session, caller, namespace, name, spec, body.reason))


@router.post(ENDPOINT + "/rollback", response_model=RevisionOut, status_code=status.HTTP_201_CREATED)
def rollback_endpoint(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> RevisionOut:
    """Serve again what the previous revision served (as a new revision)."""
    with platform.db.session(write=True) as session:
        return RevisionOut.model_validate(revisions.rollback(session, caller, namespace, name))
