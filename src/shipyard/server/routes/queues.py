"""Team queues: a namespace's quota (platform admins set it) and its waiting pipeline runs."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shipyard.pipelines import queue
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import PipelineRunOut, QueueOut, QuotaIn, QuotaOut

router = APIRouter(tags=["queues"])
QUOTA = "/namespaces/{namespace}/quota"


@router.get("/namespaces/{namespace}/queue", response_model=QueueOut, summary="Quota, usage and queued runs in start order")
def get_queue(namespace: str, platform: PlatformDep, caller: CallerDep) -> QueueOut:
    with platform.db.session() as session:
        found = queue.usage(session, caller, namespace)
        return QueueOut(
            namespace=namespace,
            quota=QuotaOut.model_validate(found.quota) if found.quota is not None else None,
            running=found.running,
            used=found.used,
            queued=[PipelineRunOut.model_validate(run) for run in found.queued],
        )


@router.put(QUOTA, response_model=QuotaOut, summary="Replace the namespace's quota (platform admins; empty limits: none)")
def set_quota(namespace: str, body: QuotaIn, platform: PlatformDep, caller: CallerDep) -> QuotaOut:
    with platform.db.session(write=True) as session:
        quota = queue.set_quota(session, caller, namespace, **body.model_dump())
        return QuotaOut.model_validate(quota)


@router.delete(QUOTA, status_code=status.HTTP_204_NO_CONTENT, summary="Remove the namespace's quota (platform admins)")
def remove_quota(namespace: str, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        queue.remove_quota(session, caller, namespace)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
