"""Run artifacts and blobs: streamed in and out, never held whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from shipyard.access import blobs, namespaces
from shipyard.access.roles import Action
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import ArtifactOut, BlobOut
from shipyard.tracking import artifacts

router = APIRouter(tags=["artifacts"])


@router.put(
    "/namespaces/{namespace}/runs/{run_id}/artifacts/{path:path}",
    response_model=ArtifactOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload one artifact of a run (raw body, streamed)",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def upload_artifact(
    namespace: str, run_id: str, path: str, request: Request, platform: PlatformDep, caller: CallerDep
) -> ArtifactOut:
    def check() -> str:
        with platform.db.session() as session:
            return artifacts.check_upload(session, caller, namespace, run_id, path)

    clean_path = await run_in_threadpool(check)
    blob = await platform.artifacts.put_async_chunks(request.stream(), max_bytes=platform.settings.max_artifact_bytes)
    media_type = request.headers.get("content-type", "application/octet-stream")

    def record() -> ArtifactOut:
        with platform.db.session(write=True) as session:
            return ArtifactOut.model_validate(artifacts.record(session, caller, namespace, run_id, clean_path, blob, media_type))

    return await run_in_threadpool(record)


@router.get("/namespaces/{namespace}/runs/{run_id}/artifacts", response_model=list[ArtifactOut], summary="List a run's artifacts")
def list_artifacts(
    namespace: str, run_id: str, platform: PlatformDep, caller: CallerDep, prefix: Annotated[str, Query(max_length=1024)] = ""
) -> list[ArtifactOut]:
    with platform.db.session() as session:
        return [ArtifactOut.model_validate(a) for a in artifacts.list_for(session, caller, namespace, run_id, prefix)]


@router.get(
    "/namespaces/{namespace}/runs/{run_id}/artifacts/{path:path}",
    response_class=StreamingResponse,
    summary="Download one artifact (checked against its digest as it streams)",
)
def download_artifact(namespace: str, run_id: str, path: str, platform: PlatformDep, caller: CallerDep) -> StreamingResponse:
    with platform.db.session() as session:
        artifact = artifacts.get(session, caller, namespace, run_id, path)
    return stream_blob(platform, artifact.digest, artifact.size, artifact.media_type)


@router.put(
    "/namespaces/{namespace}/blobs",
    response_model=BlobOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a blob (e.g. a model file) and get its sha256 digest",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "required": True,
        }
    },
)
async def upload_blob(namespace: str, request: Request, platform: PlatformDep, caller: CallerDep) -> BlobOut:
    def check() -> None:
        with platform.db.session() as session:
            namespaces.require_exists(session, caller, namespace, Action.WRITE)

    await run_in_threadpool(check)
    blob = await platform.artifacts.put_async_chunks(request.stream(), max_bytes=platform.settings.max_artifact_bytes)

    def claim() -> None:
        with platform.db.session(write=True) as session:
            blobs.claim(session, caller, namespace, blob)

    await run_in_threadpool(claim)
    return BlobOut(digest=blob.digest, size=blob.size)


def stream_blob(platform: PlatformDep, digest: str, size: int, media_type: str) -> StreamingResponse:
    # Open (and fail with 404) before the response starts, then stream and verify.
    chunks: Iterator[bytes] = platform.artifacts.iter_chunks(digest)
    first = next(chunks, b"")

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    headers = {"Content-Length": str(size), "X-Shipyard-Digest": digest}
    return StreamingResponse(body(), media_type=media_type, headers=headers)
