"""Experiments in a namespace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import ExperimentIn, ExperimentOut, ExperimentPatch
from shipyard.tracking import experiments

router = APIRouter(tags=["experiments"])


@router.get("/namespaces/{namespace}/experiments", response_model=list[ExperimentOut])
def list_experiments(
    namespace: str,
    platform: PlatformDep,
    caller: CallerDep,
    name: Annotated[str | None, Query(max_length=255, description="Only the experiment with this name")] = None,
    include_deleted: bool = False,
) -> list[ExperimentOut]:
    with platform.db.session() as session:
        if name is not None:
            return [ExperimentOut.model_validate(experiments.get_by_name(session, caller, namespace, name))]
        found = experiments.list_in(session, caller, namespace, include_deleted=include_deleted)
        return [ExperimentOut.model_validate(e) for e in found]


@router.post("/namespaces/{namespace}/experiments", response_model=ExperimentOut, status_code=status.HTTP_201_CREATED)
def create_experiment(namespace: str, body: ExperimentIn, platform: PlatformDep, caller: CallerDep) -> ExperimentOut:
    with platform.db.session(write=True) as session:
        created = experiments.create(session, caller, namespace, body.name, description=body.description, tags=body.tags)
        return ExperimentOut.model_validate(created)


@router.get("/namespaces/{namespace}/experiments/{experiment_id}", response_model=ExperimentOut)
def get_experiment(namespace: str, experiment_id: str, platform: PlatformDep, caller: CallerDep) -> ExperimentOut:
    with platform.db.session() as session:
        return ExperimentOut.model_validate(experiments.get(session, caller, namespace, experiment_id))


@router.patch("/namespaces/{namespace}/experiments/{experiment_id}", response_model=ExperimentOut)
def update_experiment(
    namespace: str, experiment_id: str, body: ExperimentPatch, platform: PlatformDep, caller: CallerDep
) -> ExperimentOut:
    with platform.db.session(write=True) as session:
        updated = experiments.update(
            session,
            caller,
            namespace,
            experiment_id,
            name=body.name,
            description=body.description,
            tags=body.tags,
            lifecycle_stage=body.lifecycle_stage,
        )
        return ExperimentOut.model_validate(updated)
