"""Namespaces: the unit of tenancy. Every record belongs to exactly one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.names import namespace_name
from shipyard.access.roles import Action
from shipyard.errors import AlreadyExists, Conflict, NotVisible
from shipyard.store.models import Experiment, Namespace, Principal, RegisteredModel, RoleBinding


def create(
    session: Session, caller: Caller, name: str, *, description: str = "", labels: dict[str, Any] | None = None
) -> Namespace:
    caller.require_platform_admin("create namespaces")
    namespace_name(name)
    if session.scalar(select(Namespace).where(Namespace.name == name)) is not None:
        raise AlreadyExists(f"namespace {name!r} already exists")
    namespace = Namespace(name=name, description=description, labels=labels or {}, created_by=caller.name)
    session.add(namespace)
    session.flush()
    return namespace


def get(session: Session, caller: Caller, name: str) -> Namespace:
    """The namespace, if the caller may read it; otherwise the same 404 as a missing one."""
    caller.require(Action.READ, name)
    namespace = session.scalar(select(Namespace).where(Namespace.name == name))
    if namespace is None:
        raise NotVisible(f"namespace {name!r} does not exist or you are not a member of it")
    return namespace


def require_exists(session: Session, caller: Caller, name: str, action: Action) -> Namespace:
    caller.require(action, name)
    return get(session, caller, name)


def list_visible(session: Session, caller: Caller) -> list[Namespace]:
    query = select(Namespace).order_by(Namespace.name)
    visible = caller.visible_namespaces()
    if visible is not None:
        query = query.where(Namespace.name.in_(visible))
    return list(session.scalars(query))


def delete(session: Session, caller: Caller, name: str) -> None:
    caller.require_platform_admin("delete namespaces")
    namespace = get(session, caller, name)
    in_use = session.scalar(select(func.count()).select_from(Experiment).where(Experiment.namespace == name)) or 0
    in_use += session.scalar(select(func.count()).select_from(RegisteredModel).where(RegisteredModel.namespace == name)) or 0
    if in_use:
        raise Conflict(f"namespace {name!r} still holds {in_use} experiments or models: delete them first")
    for binding in session.scalars(select(RoleBinding).where(RoleBinding.namespace == name)):
        session.delete(binding)
    for account in session.scalars(select(Principal).where(Principal.namespace == name)):
        session.delete(account)
    session.delete(namespace)
