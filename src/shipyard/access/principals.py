"""Users (people, platform-wide) and service accounts (workloads, one namespace each)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.names import principal_name
from shipyard.access.roles import Action
from shipyard.errors import AlreadyExists, NotFound, NotVisible
from shipyard.store.models import Principal

USER = "user"
SERVICE_ACCOUNT = "service_account"


def create_user(session: Session, caller: Caller, name: str, *, display_name: str = "") -> Principal:
    caller.require_platform_admin("create users")
    return _create(session, caller, USER, "", name, display_name)


def create_service_account(session: Session, caller: Caller, namespace: str, name: str, *, display_name: str = "") -> Principal:
    namespaces.require_exists(session, caller, namespace, Action.ADMIN)
    return _create(session, caller, SERVICE_ACCOUNT, namespace, name, display_name)


def _create(session: Session, caller: Caller, kind: str, namespace: str, name: str, display_name: str) -> Principal:
    principal_name(name)
    existing = session.scalar(
        select(Principal).where(Principal.kind == kind, Principal.namespace == namespace, Principal.name == name)
    )
    if existing is not None:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise AlreadyExists(f"{kind.replace('_', ' ')} {name!r} already exists{where}")
    principal = Principal(kind=kind, namespace=namespace, name=name, display_name=display_name, created_by=caller.name)
    session.add(principal)
    session.flush()
    return principal


def get_user(session: Session, caller: Caller, name: str) -> Principal:
    user = session.scalar(select(Principal).where(Principal.kind == USER, Principal.name == name))
    if user is None:
        raise NotFound(f"user {name!r} does not exist")
    if not (caller.is_platform_admin or user.id == caller.principal_id or _shares_admin_namespace(session, caller, user)):
        raise NotVisible(f"user {name!r} does not exist")
    return user


def get_service_account(session: Session, caller: Caller, namespace: str, name: str) -> Principal:
    caller.require(Action.READ, namespace)
    account = session.scalar(
        select(Principal).where(Principal.kind == SERVICE_ACCOUNT, Principal.namespace == namespace, Principal.name == name)
    )
    if account is None:
        raise NotFound(f"service account {name!r} does not exist in namespace {namespace!r}")
    return account


def get_by_id(session: Session, principal_id: str) -> Principal:
    principal = session.get(Principal, principal_id)
    if principal is None:
        raise NotFound(f"principal {principal_id!r} does not exist")
    return principal


def list_users(session: Session, caller: Caller) -> list[Principal]:
    caller.require_platform_admin("list all users")
    return list(session.scalars(select(Principal).where(Principal.kind == USER).order_by(Principal.name)))


def list_service_accounts(session: Session, caller: Caller, namespace: str) -> list[Principal]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    return list(
        session.scalars(
            select(Principal).where(Principal.kind == SERVICE_ACCOUNT, Principal.namespace == namespace).order_by(Principal.name)
        )
    )


def set_disabled(session: Session, caller: Caller, principal: Principal, disabled: bool) -> Principal:
    if principal.kind == SERVICE_ACCOUNT:
        caller.require(Action.ADMIN, principal.namespace)
    else:
        caller.require_platform_admin("disable or enable users")
    principal.disabled = disabled
    return principal


def _shares_admin_namespace(session: Session, caller: Caller, user: Principal) -> bool:
    """Namespace admins may look users up, to grant them roles in their namespace."""
    return any(caller.can(Action.ADMIN, ns) for ns in caller.bindings)
