"""Runs: create, update, log in batches, search, metric history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import (
    LatestMetricOut,
    LogBatchIn,
    MetricHistoryOut,
    MetricPointOut,
    RunDetail,
    RunIn,
    RunOut,
    RunPageOut,
    RunPatch,
    RunSearchIn,
)
from shipyard.store.models import Run
from shipyard.tracking import experiments, runs, search
from shipyard.tracking.runs import Batch, MetricPoint

router = APIRouter(tags=["runs"])


def detail(session: Session, run: Run) -> RunDetail:
    return RunDetail(
        **RunOut.model_validate(run).model_dump(),
        params=runs.params_of(session, run.id),
        tags=runs.tags_of(session, run.id),
        metrics=[LatestMetricOut.model_validate(m) for m in runs.latest_metrics_of(session, run.id)],
    )


@router.post("/namespaces/{namespace}/runs", response_model=RunDetail, status_code=status.HTTP_201_CREATED, summary="Start a run")
def create_run(namespace: str, body: RunIn, platform: PlatformDep, caller: CallerDep) -> RunDetail:
    with platform.db.session(write=True) as session:
        if body.experiment_id is not None:
            experiment_id = body.experiment_id
        else:
            experiment_id = experiments.get_or_create(session, caller, namespace, body.experiment_name or "Default").id
        run = runs.create(
            session,
            caller,
            namespace,
            experiment_id,
            name=body.name,
            start_time=body.start_time,
            code_version=body.code_version,
            parent_run_id=body.parent_run_id,
            tags=body.tags,
        )
        return detail(session, run)


@router.get("/namespaces/{namespace}/runs/{run_id}", response_model=RunDetail)
def get_run(namespace: str, run_id: str, platform: PlatformDep, caller: CallerDep) -> RunDetail:
    with platform.db.session() as session:
        return detail(session, runs.get(session, caller, namespace, run_id))


@router.patch(
    "/namespaces/{namespace}/runs/{run_id}", response_model=RunDetail, summary="Set status (end a run), name or lifecycle"
)
def update_run(namespace: str, run_id: str, body: RunPatch, platform: PlatformDep, caller: CallerDep) -> RunDetail:
    with platform.db.session(write=True) as session:
        run = runs.update(
            session,
            caller,
            namespace,
            run_id,
            status=body.status,
            end_time=body.end_time,
            name=body.name,
            lifecycle_stage=body.lifecycle_stage,
        )
        return detail(session, run)


@router.post(
    "/namespaces/{namespace}/runs/{run_id}/log-batch",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log metrics, params and tags in one all-or-nothing write",
)
def log_batch(namespace: str, run_id: str, body: LogBatchIn, platform: PlatformDep, caller: CallerDep) -> Response:
    batch = Batch(
        metrics=[MetricPoint(m["key"], m["value"], m.get("step", 0), m.get("timestamp")) for m in body.metrics],
        params=body.params,
        tags=body.tags,
    )
    with platform.db.session(write=True) as session:
        runs.log_batch(session, caller, namespace, run_id, batch)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/namespaces/{namespace}/runs/{run_id}/tags/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tag(namespace: str, run_id: str, key: str, platform: PlatformDep, caller: CallerDep) -> None:
    with platform.db.session(write=True) as session:
        runs.delete_tag(session, caller, namespace, run_id, key)


@router.get(
    "/namespaces/{namespace}/runs/{run_id}/metrics/{key:path}",
    response_model=MetricHistoryOut,
    summary="Every logged point of one metric",
)
def metric_history(
    namespace: str,
    run_id: str,
    key: str,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Page: points after this id")] = 0,
) -> MetricHistoryOut:
    with platform.db.session() as session:
        points = runs.metric_history(session, caller, namespace, run_id, key, limit=limit, after_id=after_id)
        return MetricHistoryOut(
            key=key,
            points=[MetricPointOut(id=p.id, value=p.value, step=p.step, timestamp=p.timestamp) for p in points],
            next_after_id=points[-1].id if len(points) == limit else None,
        )


@router.post(
    "/namespaces/{namespace}/runs:search", response_model=RunPageOut, summary="Find runs by params, metrics, tags and attributes"
)
def search_runs(namespace: str, body: RunSearchIn, platform: PlatformDep, caller: CallerDep) -> RunPageOut:
    with platform.db.session() as session:
        page = search.search(
            session,
            caller,
            namespace,
            experiment_ids=body.experiment_ids,
            filter=body.filter,
            order_by=body.order_by,
            max_results=body.max_results,
            page_token=body.page_token,
            include_deleted=body.include_deleted,
        )
        return RunPageOut(runs=[detail(session, r) for r in page.runs], next_page_token=page.next_page_token)
