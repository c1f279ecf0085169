"""Role bindings: which principal holds which role in which namespace."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import ALL_NAMESPACES, Action, Role
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.models import Principal, RoleBinding


def grant(session: Session, caller: Caller, principal: Principal, namespace: str, role: Role) -> RoleBinding:
    """Give ``principal`` ``role`` in ``namespace``, replacing any role it had there."""
    if role == Role.PLATFORM_ADMIN or namespace == ALL_NAMESPACES:
        if not (role == Role.PLATFORM_ADMIN and namespace == ALL_NAMESPACES):
            raise InvalidInput("platform-admin is granted on namespace '*' only, and '*' takes no other role")
        caller.require_platform_admin("grant platform-admin")
        if principal.kind != "user":
            raise InvalidInput("platform-admin is for people: grant it to a user, not a service account")
    else:
        namespaces.require_exists(session, caller, namespace, Action.ADMIN)
        if principal.kind == "service_account" and principal.namespace != namespace:
            raise InvalidInput(
                f"service account {principal.name!r} belongs to namespace {principal.namespace!r}: "
                f"it can hold roles there only, not in {namespace!r}"
            )
    binding = session.scalar(
        select(RoleBinding).where(RoleBinding.principal_id == principal.id, RoleBinding.namespace == namespace)
    )
    if binding is None:
        binding = RoleBinding(principal_id=principal.id, namespace=namespace, role=role.value, created_by=caller.name)
        session.add(binding)
    else:
        binding.role = role.value
        binding.created_by = caller.name
    session.flush()
    return binding


def revoke(session: Session, caller: Caller, principal: Principal, namespace: str) -> None:
    if namespace == ALL_NAMESPACES:
        caller.require_platform_admin("revoke platform-admin")
        if principal.id == caller.principal_id:
            raise InvalidInput("you cannot revoke your own platform-admin role: ask another platform admin")
    else:
        namespaces.require_exists(session, caller, namespace, Action.ADMIN)
    binding = session.scalar(
        select(RoleBinding).where(RoleBinding.principal_id == principal.id, RoleBinding.namespace == namespace)
    )
    if binding is None:
        raise NotFound(f"{principal.name!r} holds no role in namespace {namespace!r}")
    session.delete(binding)


def list_in(session: Session, caller: Caller, namespace: str) -> list[tuple[RoleBinding, Principal]]:
    if namespace == ALL_NAMESPACES:
        caller.require_platform_admin("list platform admins")
    else:
        namespaces.require_exists(session, caller, namespace, Action.READ)
    rows = session.execute(
        select(RoleBinding, Principal)
        .join(Principal, Principal.id == RoleBinding.principal_id)
        .where(RoleBinding.namespace == namespace)
        .order_by(Principal.name)
    ).all()
    return [(b, p) for b, p in rows]
