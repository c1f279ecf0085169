"""Namespaces, their service accounts and role bindings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from shipyard.access import bindings, namespaces, principals
from shipyard.access.caller import Caller
from shipyard.access.roles import ALL_NAMESPACES, Action, Role
from shipyard.access.tokens import display_name
from shipyard.errors import InvalidInput
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import NamespaceIn, NamespaceOut, PrincipalOut, RoleBindingIn, RoleBindingOut, ServiceAccountIn
from shipyard.store.models import Principal

router = APIRouter(tags=["namespaces"])


@router.get("/namespaces", response_model=list[NamespaceOut])
def list_namespaces(platform: PlatformDep, caller: CallerDep) -> list[NamespaceOut]:
    with platform.db.session() as session:
        return [NamespaceOut.model_validate(n) for n in namespaces.list_visible(session, caller)]


@router.post("/namespaces", response_model=NamespaceOut, status_code=status.HTTP_201_CREATED)
def create_namespace(body: NamespaceIn, platform: PlatformDep, caller: CallerDep) -> NamespaceOut:
    with platform.db.session(write=True) as session:
        created = namespaces.create(session, caller, body.name, description=body.description, labels=dict(body.labels))
        return NamespaceOut.model_validate(created)


@router.get("/namespaces/{namespace}", response_model=NamespaceOut)
def get_namespace(namespace: str, platform: PlatformDep, caller: CallerDep) -> NamespaceOut:
    with platform.db.session() as session:
        return NamespaceOut.model_validate(namespaces.get(session, caller, namespace))


@router.delete("/namespaces/{namespace}", status_code=status.HTTP_204_NO_CONTENT)
def delete_namespace(namespace: str, platform: PlatformDep, caller: CallerDep) -> None:
    with platform.db.session(write=True) as session:
        namespaces.delete(session, caller, namespace)


@router.get("/namespaces/{namespace}/service-accounts", response_model=list[PrincipalOut])
def list_service_accounts(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[PrincipalOut]:
    with platform.db.session() as session:
        return [PrincipalOut.model_validate(p) for p in principals.list_service_accounts(session, caller, namespace)]


@router.post("/namespaces/{namespace}/service-accounts", response_model=PrincipalOut, status_code=status.HTTP_201_CREATED)
def create_service_account(namespace: str, body: ServiceAccountIn, platform: PlatformDep, caller: CallerDep) -> PrincipalOut:
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, caller, namespace, body.name, display_name=body.display_name)
        return PrincipalOut.model_validate(account)


def _principal(session: Session, caller: Caller, namespace: str, user: str | None, service_account: str | None) -> Principal:
    if (user is None) == (service_account is None):
        raise InvalidInput("name exactly one of 'user' or 'service_account'")
    # Refuse callers who may not manage roles here before saying anything about the principal.
    if namespace == ALL_NAMESPACES:
        caller.require_platform_admin("grant or revoke platform-admin")
    else:
        caller.require(Action.ADMIN, namespace)
    if user is not None:
        return principals.get_user(session, caller, user)
    return principals.get_service_account(session, caller, namespace, str(service_account))


def _binding_out(namespace: str, role: str, principal: Principal, created_at: int, created_by: str) -> RoleBindingOut:
    return RoleBindingOut(
        namespace=namespace,
        role=role,
        principal=display_name(principal),
        kind=principal.kind,
        created_at=created_at,
        created_by=created_by,
    )


@router.get(
    "/namespaces/{namespace}/role-bindings",
    response_model=list[RoleBindingOut],
    summary="Members and their roles ('*' lists platform admins)",
)
def list_role_bindings(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[RoleBindingOut]:
    with platform.db.session() as session:
        return [
            _binding_out(b.namespace, b.role, p, b.created_at, b.created_by)
            for b, p in bindings.list_in(session, caller, namespace)
        ]


@router.post(
    "/namespaces/{namespace}/role-bindings",
    response_model=RoleBindingOut,
    summary="Grant a role (replaces the principal's role there)",
)
def grant_role(namespace: str, body: RoleBindingIn, platform: PlatformDep, caller: CallerDep) -> RoleBindingOut:
    with platform.db.session(write=True) as session:
        principal = _principal(session, caller, namespace, body.user, body.service_account)
        binding = bindings.grant(session, caller, principal, namespace, Role.parse(body.role))
        return _binding_out(binding.namespace, binding.role, principal, binding.created_at, binding.created_by)


@router.delete(
    "/namespaces/{namespace}/role-bindings", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a principal's role"
)
def revoke_role(
    namespace: str,
    platform: PlatformDep,
    caller: CallerDep,
    user: Annotated[str | None, Query(max_length=255)] = None,
    service_account: Annotated[str | None, Query(max_length=255)] = None,
) -> None:
    with platform.db.session(write=True) as session:
        principal = _principal(session, caller, namespace, user, service_account)
        bindings.revoke(session, caller, principal, namespace)
