"""Pipeline runs: runs, step attempts (an upsert each), the step cache, log lines, and blobs to read back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.responses import StreamingResponse

from shipyard.access import blobs
from shipyard.errors import NotFound
from shipyard.pipelines import records
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.routes.artifacts import stream_blob
from shipyard.server.schemas import (
    MAX_INT64,
    CacheKey,
    LogLineOut,
    LogsIn,
    PipelineRunIn,
    PipelineRunOut,
    PipelineRunPatch,
    PipelineRunStatus,
    StepCacheIn,
    StepRunIn,
    StepRunOut,
)

router = APIRouter(tags=["pipelines"])
RUNS = "/namespaces/{namespace}/pipeline-runs"
RUN = RUNS + "/{run_id}"
StepName = Annotated[str, Path(min_length=1, max_length=255)]
Attempt = Annotated[int, Path(ge=1, le=records.MAX_ATTEMPT)]


@router.post(RUNS, response_model=PipelineRunOut, status_code=status.HTTP_201_CREATED, summary="Record a new pipeline run")
def create_pipeline_run(namespace: str, body: PipelineRunIn, platform: PlatformDep, caller: CallerDep) -> PipelineRunOut:
    with platform.db.session(write=True) as session:
        run = records.create_run(
            session,
            caller,
            namespace,
            body.pipeline,
            body.params,
            body.graph,
            priority=body.priority,
            executor=body.executor,
            resumed_from=body.resumed_from,
            resources=body.resources,
            trigger=body.trigger,
        )
        return PipelineRunOut.model_validate(run)


@router.get(RUNS, response_model=list[PipelineRunOut], summary="Pipeline runs, newest first")
def list_pipeline_runs(
    namespace: str,
    platform: PlatformDep,
    caller: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=255)] = None,
    status: PipelineRunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=records.MAX_LIST)] = 100,
) -> list[PipelineRunOut]:
    with platform.db.session() as session:
        found = records.list_runs(session, caller, namespace, pipeline=pipeline, status=status, limit=limit)
        return [PipelineRunOut.model_validate(r) for r in found]


@router.get(RUN, response_model=PipelineRunOut)
def get_pipeline_run(namespace: str, run_id: str, platform: PlatformDep, caller: CallerDep) -> PipelineRunOut:
    with platform.db.session() as session:
        return PipelineRunOut.model_validate(records.get_run(session, caller, namespace, run_id))


@router.patch(RUN, response_model=PipelineRunOut, summary="Move a run on (running, succeeded, failed, cancelled)")
def update_pipeline_run(
    namespace: str, run_id: str, body: PipelineRunPatch, platform: PlatformDep, caller: CallerDep
) -> PipelineRunOut:
    with platform.db.session(write=True) as session:
        run = records.update_run(session, caller, namespace, run_id, status=body.status, error=body.error)
        return PipelineRunOut.model_validate(run)


@router.put(
    RUN + "/steps/{step}/attempts/{attempt}",
    response_model=StepRunOut,
    summary="Record one attempt of one step (created or updated; fields left out keep their values)",
)
def record_step(
    namespace: str, run_id: str, step: StepName, attempt: Attempt, body: StepRunIn, platform: PlatformDep, caller: CallerDep
) -> StepRunOut:
    fields = body.model_dump(exclude_unset=True, exclude={"blobs", "logs"})
    stored = records.store_blobs(caller, namespace, platform.artifacts, body.blobs or {})
    with platform.db.session(write=True) as session:
        record = records.record_step(
            session, caller, namespace, run_id, step, attempt, blobs=stored, logs=body.logs or [], **fields
        )  # fmt: skip
        return StepRunOut.model_validate(record)


@router.post(
    RUN + "/steps/{step}/attempts/{attempt}:from-cache",
    response_model=StepRunOut,
    status_code=status.HTTP_201_CREATED,
    responses={status.HTTP_204_NO_CONTENT: {"description": "Nothing is cached under this key; nothing was recorded."}},
    summary="Record one attempt as served from the step cache, when the cache holds its key (a lookup and a record in one)",
)
def record_cached_step(
    namespace: str, run_id: str, step: StepName, attempt: Attempt, body: StepCacheIn, platform: PlatformDep, caller: CallerDep
) -> Response | StepRunOut:
    with platform.db.session(write=True) as session:
        record = records.record_cached(
            session, caller, namespace, run_id, step, attempt, cache_key=body.cache_key,
            inputs=body.model_dump(exclude_unset=True).get("inputs"), executor=body.executor,
        )  # fmt: skip
        if record is None:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        return StepRunOut.model_validate(record)


@router.get(RUN + "/steps", response_model=list[StepRunOut], summary="Every attempt of every step, in the order they began")
def list_step_runs(namespace: str, run_id: str, platform: PlatformDep, caller: CallerDep) -> list[StepRunOut]:
    with platform.db.session() as session:
        return [StepRunOut.model_validate(s) for s in records.list_steps(session, caller, namespace, run_id)]


@router.get(
    "/namespaces/{namespace}/step-cache/{cache_key}",
    response_model=StepRunOut,
    summary="The newest succeeded step run with this cache key whose outputs are still held (404 when none)",
)
def cached_step(namespace: str, cache_key: Annotated[CacheKey, Path()], platform: PlatformDep, caller: CallerDep) -> StepRunOut:
    with platform.db.session() as session:
        hit = records.cached_step(session, caller, namespace, cache_key)
        if hit is None:
            raise NotFound(f"no succeeded step run in namespace {namespace!r} has cache key {cache_key!r}")
        return StepRunOut.model_validate(hit)


@router.post(
    RUN + "/logs",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Append log lines (at most 10,000 per request)",
)
def append_logs(namespace: str, run_id: str, body: LogsIn, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        records.append_logs(session, caller, namespace, run_id, body.lines)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(RUN + "/logs", response_model=list[LogLineOut], summary="Log lines after the id 'after', in order")
def read_logs(
    namespace: str,
    run_id: str,
    platform: PlatformDep,
    caller: CallerDep,
    step: Annotated[str | None, Query(max_length=255)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=records.MAX_LOG_PAGE)] = 1000,
) -> list[LogLineOut]:
    with platform.db.session() as session:
        lines = records.read_logs(session, caller, namespace, run_id, step=step, after=after, limit=limit)
        return [LogLineOut.model_validate(line) for line in lines]


@router.get(
    "/namespaces/{namespace}/blobs/{digest}",
    response_class=StreamingResponse,
    tags=["artifacts"],
    summary="Download a blob the namespace holds (checked against its digest as it streams)",
)
def download_blob(
    namespace: str,
    digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    platform: PlatformDep,
    caller: CallerDep,
) -> StreamingResponse:
    with platform.db.session() as session:
        held = blobs.readable(session, caller, namespace, digest)
    return stream_blob(platform, held.digest, held.size, "application/octet-stream")
