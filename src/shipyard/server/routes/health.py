"""Liveness, and who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from shipyard._version import __version__
from shipyard.server.deps import CallerDep
from shipyard.server.schemas import Health, WhoAmI

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="Liveness; answers without a token")
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.get("/whoami", response_model=WhoAmI, summary="The caller, its roles and its token's scopes")
def whoami(caller: CallerDep) -> WhoAmI:
    return WhoAmI(
        name=caller.name,
        kind=caller.kind,
        roles={ns: role.value for ns, role in caller.bindings.items()},
        scopes=sorted(caller.scopes),
        token_namespace=caller.token_namespace,
    )
