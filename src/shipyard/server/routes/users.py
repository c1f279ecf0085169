"""Users: people, platform-wide."""

from __future__ import annotations

from fastapi import APIRouter, status

from shipyard.access import principals
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import PrincipalOut, PrincipalPatch, UserIn

router = APIRouter(tags=["users"])


@router.get("/users", response_model=list[PrincipalOut])
def list_users(platform: PlatformDep, caller: CallerDep) -> list[PrincipalOut]:
    with platform.db.session() as session:
        return [PrincipalOut.model_validate(u) for u in principals.list_users(session, caller)]


@router.post("/users", response_model=PrincipalOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, platform: PlatformDep, caller: CallerDep) -> PrincipalOut:
    with platform.db.session(write=True) as session:
        return PrincipalOut.model_validate(principals.create_user(session, caller, body.name, display_name=body.display_name))


@router.get("/users/{name}", response_model=PrincipalOut)
def get_user(name: str, platform: PlatformDep, caller: CallerDep) -> PrincipalOut:
    with platform.db.session() as session:
        return PrincipalOut.model_validate(principals.get_user(session, caller, name))


@router.patch("/users/{name}", response_model=PrincipalOut, summary="Disable or enable a user")
def patch_user(name: str, body: PrincipalPatch, platform: PlatformDep, caller: CallerDep) -> PrincipalOut:
    with platform.db.session(write=True) as session:
        user = principals.get_user(session, caller, name)
        return PrincipalOut.model_validate(principals.set_disabled(session, caller, user, body.disabled))
