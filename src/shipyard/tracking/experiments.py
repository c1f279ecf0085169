"""Experiments: named groups of runs in a namespace."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.names import record_name
from shipyard.access.roles import Action
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store.models import Experiment, now_ms

LIFECYCLE_STAGES = ("active", "deleted")


def create(
    session: Session, caller: Caller, namespace: str, name: str, *, description: str = "", tags: dict[str, str] | None = None
) -> Experiment:
    namespaces.require_exists(session, caller, namespace, Action.WRITE)
    record_name(name, "experiment", allow_slash=True)
    if session.scalar(select(Experiment).where(Experiment.namespace == namespace, Experiment.name == name)) is not None:
        raise AlreadyExists(f"experiment {name!r} already exists in namespace {namespace!r}")
    experiment = Experiment(
        namespace=namespace, name=name, description=description, tags=dict(tags or {}), created_by=caller.name
    )
    session.add(experiment)
    session.flush()
    return experiment


def get_or_create(session: Session, caller: Caller, namespace: str, name: str) -> Experiment:
    caller.require(Action.READ, namespace)
    existing = session.scalar(select(Experiment).where(Experiment.namespace == namespace, Experiment.name == name))
    return existing if existing is not None else create(session, caller, namespace, name)


def get(session: Session, caller: Caller, namespace: str, experiment_id: str) -> Experiment:
    caller.require(Action.READ, namespace)
    experiment = session.get(Experiment, experiment_id)
    if experiment is None or experiment.namespace != namespace:
        raise NotFound(f"experiment {experiment_id!r} does not exist in namespace {namespace!r}")
    return experiment


def get_by_name(session: Session, caller: Caller, namespace: str, name: str) -> Experiment:
    caller.require(Action.READ, namespace)
    experiment = session.scalar(select(Experiment).where(Experiment.namespace == namespace, Experiment.name == name))
    if experiment is None:
        raise NotFound(f"experiment {name!r} does not exist in namespace {namespace!r}")
    return experiment


def list_in(session: Session, caller: Caller, namespace: str, *, include_deleted: bool = False) -> list[Experiment]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    stmt = select(Experiment).where(Experiment.namespace == namespace).order_by(Experiment.created_at, Experiment.id)
    if not include_deleted:
        stmt = stmt.where(Experiment.lifecycle_stage == "active")
    return list(session.scalars(stmt))


def update(
    session: Session,
    caller: Caller,
    namespace: str,
    experiment_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    lifecycle_stage: str | None = None,
) -> Experiment:
    caller.require(Action.WRITE, namespace)
    experiment = get(session, caller, namespace, experiment_id)
    if name is not None and name != experiment.name:
        record_name(name, "experiment", allow_slash=True)
        clash = session.scalar(select(Experiment).where(Experiment.namespace == namespace, Experiment.name == name))
        if clash is not None:
            raise AlreadyExists(f"experiment {name!r} already exists in namespace {namespace!r}")
        experiment.name = name
    if description is not None:
        experiment.description = description
    if tags:
        experiment.tags = {**experiment.tags, **tags}
    if lifecycle_stage is not None:
        if lifecycle_stage not in LIFECYCLE_STAGES:
            raise InvalidInput(f"lifecycle stage {lifecycle_stage!r} is unknown: expected one of {LIFECYCLE_STAGES}")
        experiment.lifecycle_stage = lifecycle_stage
    experiment.updated_at = now_ms()
    return experiment
