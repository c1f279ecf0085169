"""Schedules: when pipelines run by themselves (cron, events), and each firing's outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from shipyard.pipelines import schedules
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import ScheduleFireOut, ScheduleIn, ScheduleOut, SchedulePatch

router = APIRouter(tags=["schedules"])
SCHEDULES = "/namespaces/{namespace}/schedules"
ScheduleName = Annotated[str, Path(min_length=1, max_length=63)]


@router.put(SCHEDULES + "/{name}", response_model=ScheduleOut, summary="Create or replace a schedule")
def put_schedule(namespace: str, name: ScheduleName, body: ScheduleIn, platform: PlatformDep, caller: CallerDep) -> ScheduleOut:
    spec = body.model_dump()
    if body.on_event is not None:
        spec["on_event"] = body.on_event.model_dump(exclude_none=True)
    with platform.db.session(write=True) as session:
        return ScheduleOut.model_validate(schedules.put(session, caller, namespace, name, spec))


@router.get(SCHEDULES, response_model=list[ScheduleOut], summary="The namespace's schedules by name")
def list_schedules(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[ScheduleOut]:
    with platform.db.session() as session:
        return [ScheduleOut.model_validate(s) for s in schedules.list_schedules(session, caller, namespace)]


@router.get(SCHEDULES + "/{name}", response_model=ScheduleOut)
def get_schedule(namespace: str, name: ScheduleName, platform: PlatformDep, caller: CallerDep) -> ScheduleOut:
    with platform.db.session() as session:
        return ScheduleOut.model_validate(schedules.get(session, caller, namespace, name))


@router.patch(SCHEDULES + "/{name}", response_model=ScheduleOut, summary="Pause or resume (missed times are not made up)")
def patch_schedule(
    namespace: str, name: ScheduleName, body: SchedulePatch, platform: PlatformDep, caller: CallerDep
) -> ScheduleOut:
    with platform.db.session(write=True) as session:
        return ScheduleOut.model_validate(schedules.set_enabled(session, caller, namespace, name, body.enabled))


@router.delete(SCHEDULES + "/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_schedule(namespace: str, name: ScheduleName, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        schedules.delete(session, caller, namespace, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(SCHEDULES + "/{name}/fires", response_model=list[ScheduleFireOut], summary="The schedule's firings, newest first")
def list_fires(
    namespace: str,
    name: ScheduleName,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=schedules.MAX_LIST)] = 100,
) -> list[ScheduleFireOut]:
    with platform.db.session() as session:
        return [ScheduleFireOut.model_validate(f) for f in schedules.fires(session, caller, namespace, name, limit=limit)]
