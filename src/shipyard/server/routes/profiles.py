"""Reference profiles of model versions: the training data's profile that monitors compare windows against."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from shipyard.errors import NotFound
from shipyard.monitoring import reference
from shipyard.registry import models
from shipyard.server.deps import CallerDep, PlatformDep

router = APIRouter(tags=["models"])
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number, from 1")]


@router.get(
    "/namespaces/{namespace}/models/{name}/versions/{version}/profile",
    summary="The version's reference profile (Profile.to_dict()): its training inputs and predictions",
)
def get_profile(namespace: str, name: str, version: VersionNumber, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    with platform.db.session() as session:
        digest = models.get_version(session, caller, namespace, name, version).profile_digest
    if digest is None:
        raise NotFound(reference.missing_message(name, version))
    return reference.load_profile(platform.artifacts, namespace, digest).to_dict()
