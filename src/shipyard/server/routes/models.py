"""Model registry: models, immutable versions, aliases with history, lineage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.errors import NotFound
from shipyard.registry import aliases, lineage, models
from shipyard.registry.models import VersionDraft
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.routes.artifacts import stream_blob
from shipyard.server.schemas import (
    AliasChangeOut,
    AliasIn,
    AliasOut,
    ModelDetail,
    ModelIn,
    ModelOut,
    ModelPatch,
    ModelVersionIn,
    ModelVersionOut,
    ModelVersionPatch,
)
from shipyard.store.models import ModelVersion, RegisteredModel

router = APIRouter(tags=["models"])
MODEL = "/namespaces/{namespace}/models/{name}"
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number, from 1")]


def _detail(session: Session, model: RegisteredModel) -> ModelDetail:
    latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id))
    found = aliases.list_for_model(session, model.id)
    return ModelDetail(
        **ModelOut.model_validate(model).model_dump(), aliases=[AliasOut.model_validate(a) for a in found], latest_version=latest
    )


def _version(session: Session, model_name: str, row: ModelVersion) -> ModelVersionOut:
    out = ModelVersionOut.model_validate(row)
    out.model = model_name
    out.aliases = aliases.aliases_of_version(session, row.model_id, row.version)
    return out


@router.get("/namespaces/{namespace}/models", response_model=list[ModelDetail])
def list_models(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[ModelDetail]:
    with platform.db.session() as session:
        return [_detail(session, m) for m in models.list_in(session, caller, namespace)]


@router.post("/namespaces/{namespace}/models", response_model=ModelDetail, status_code=status.HTTP_201_CREATED)
def create_model(namespace: str, body: ModelIn, platform: PlatformDep, caller: CallerDep) -> ModelDetail:
    with platform.db.session(write=True) as session:
        return _detail(
            session, models.create(session, caller, namespace, body.name, description=body.description, tags=body.tags)
        )


@router.get(MODEL, response_model=ModelDetail)
def get_model(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> ModelDetail:
    with platform.db.session() as session:
        return _detail(session, models.get(session, caller, namespace, name))


@router.patch(MODEL, response_model=ModelDetail)
def update_model(namespace: str, name: str, body: ModelPatch, platform: PlatformDep, caller: CallerDep) -> ModelDetail:
    with platform.db.session(write=True) as session:
        return _detail(session, models.update(session, caller, namespace, name, description=body.description, tags=body.tags))


@router.get(MODEL + "/versions", response_model=list[ModelVersionOut])
def list_versions(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> list[ModelVersionOut]:
    with platform.db.session() as session:
        return [_version(session, name, v) for v in models.list_versions(session, caller, namespace, name)]


@router.post(
    MODEL + "/versions",
    response_model=ModelVersionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a new immutable version",
)
def create_version(namespace: str, name: str, body: ModelVersionIn, platform: PlatformDep, caller: CallerDep) -> ModelVersionOut:
    draft = VersionDraft(
        artifact_digest=body.artifact_digest,
        format=body.format,
        onnx_digest=body.onnx_digest,
        profile_digest=body.profile_digest,
        signature=body.signature,
        metrics=body.metrics,
        run_id=body.run_id,
        datasets=[d.model_dump() for d in body.datasets],
        code_version=body.code_version,
        description=body.description,
        tags=body.tags,
        trust_pickle=body.trust_pickle,
    )
    with platform.db.session(write=True) as session:
        return _version(session, name, models.create_version(session, caller, platform.artifacts, namespace, name, draft))


@router.get(MODEL + "/versions/{version}", response_model=ModelVersionOut)
def get_version(namespace: str, name: str, version: VersionNumber, platform: PlatformDep, caller: CallerDep) -> ModelVersionOut:
    with platform.db.session() as session:
        return _version(session, name, models.get_version(session, caller, namespace, name, version))


@router.patch(
    MODEL + "/versions/{version}",
    response_model=ModelVersionOut,
    summary="Change a version's description (all else is immutable)",
)
def update_version(
    namespace: str, name: str, version: VersionNumber, body: ModelVersionPatch, platform: PlatformDep, caller: CallerDep
) -> ModelVersionOut:
    with platform.db.session(write=True) as session:
        return _version(
            session, name, models.update_version(session, caller, namespace, name, version, description=body.description)
        )


@router.get(MODEL + "/versions/{version}/lineage", summary="Run, params, metrics, code and data behind a version")
def get_lineage(namespace: str, name: str, version: VersionNumber, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    with platform.db.session() as session:
        return lineage.of_version(session, caller, namespace, name, version)


@router.get(MODEL + "/versions/{version}/artifact", response_class=StreamingResponse, summary="Download the version's model file")
def download_version(
    namespace: str,
    name: str,
    version: VersionNumber,
    platform: PlatformDep,
    caller: CallerDep,
    variant: Annotated[Literal["main", "onnx"], Query(description="main: the registered file; onnx: its ONNX export")] = "main",
) -> StreamingResponse:
    with platform.db.session() as session:
        row = models.get_version(session, caller, namespace, name, version)
    if variant == "main":
        return stream_blob(platform, row.artifact_digest, row.artifact_size, "application/octet-stream")
    if row.onnx_digest is None or row.onnx_size is None:
        raise NotFound(f"model {name!r} v{version} has no ONNX export: download variant=main instead")
    return stream_blob(platform, row.onnx_digest, row.onnx_size, "application/octet-stream")


@router.get(MODEL + "/aliases", response_model=list[AliasOut])
def list_aliases(namespace: str, name: str, platform: PlatformDep, caller: CallerDep) -> list[AliasOut]:
    with platform.db.session() as session:
        return [AliasOut.model_validate(a) for a in aliases.list_for(session, caller, namespace, name)]


@router.get(MODEL + "/aliases/{alias}", response_model=ModelVersionOut, summary="The version an alias points at")
def resolve_alias(namespace: str, name: str, alias: str, platform: PlatformDep, caller: CallerDep) -> ModelVersionOut:
    with platform.db.session() as session:
        return _version(session, name, aliases.resolve(session, caller, namespace, name, alias))


@router.put(MODEL + "/aliases/{alias}", response_model=AliasOut, summary="Point an alias at a version")
def set_alias(namespace: str, name: str, alias: str, body: AliasIn, platform: PlatformDep, caller: CallerDep) -> AliasOut:
    with platform.db.session(write=True) as session:
        return AliasOut.model_validate(aliases.set_alias(session, caller, namespace, name, alias, body.version))


@router.delete(MODEL + "/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(namespace: str, name: str, alias: str, platform: PlatformDep, caller: CallerDep) -> None:
    with platform.db.session(write=True) as session:
        aliases.delete_alias(session, caller, namespace, name, alias)


@router.post(MODEL + "/aliases/{alias}/rollback", response_model=AliasOut, summary="Move an alias back to its previous version")
def rollback_alias(namespace: str, name: str, alias: str, platform: PlatformDep, caller: CallerDep) -> AliasOut:
    with platform.db.session(write=True) as session:
        return AliasOut.model_validate(aliases.rollback(session, caller, namespace, name, alias))


@router.get(MODEL + "/aliases/{alias}/history", response_model=list[AliasChangeOut])
def alias_history(namespace: str, name: str, alias: str, platform: PlatformDep, caller: CallerDep) -> list[AliasChangeOut]:
    with platform.db.session() as session:
        return [AliasChangeOut.model_validate(c) for c in aliases.history(session, caller, namespace, name, alias)]
