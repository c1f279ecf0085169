"""Registered models and their immutable versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.access import blobs, namespaces
from shipyard.access.caller import Caller
from shipyard.access.names import record_name
from shipyard.access.roles import Action
from shipyard.artifacts import ArtifactStore, validate_digest
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, UntrustedModel
from shipyard.registry.formats import FORMATS, ONNX, PICKLE
from shipyard.store.models import ModelVersion, RegisteredModel, now_ms
from shipyard.tracking import runs


@dataclass
class VersionDraft:
    """What a caller supplies to register a version; the rest is derived."""

    artifact_digest: str
    format: str
    signature: dict[str, Any] = field(default_factory=dict)
    onnx_digest: str | None = None
    profile_digest: str | None = None  # a JSON blob: the reference profile of the training data (monitoring.reference)
    metrics: dict[str, float] | None = None
    run_id: str | None = None
    datasets: Sequence[dict[str, Any]] = ()
    code_version: str | None = None
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    trust_pickle: bool = False


def create(
    session: Session, caller: Caller, namespace: str, name: str, *, description: str = "", tags: dict[str, str] | None = None
) -> RegisteredModel:
    namespaces.require_exists(session, caller, namespace, Action.WRITE)
    record_name(name, "model")
    if "@" in name:
        raise InvalidInput(f"model name {name!r} contains '@', which separates a model from an alias: remove it")
    if _find(session, namespace, name) is not None:
        raise AlreadyExists(f"model {name!r} already exists in namespace {namespace!r}")
    model = RegisteredModel(
        namespace=namespace, name=name, description=description, tags=dict(tags or {}), created_by=caller.name
    )
    session.add(model)
    session.flush()
    return model


def _find(session: Session, namespace: str, name: str) -> RegisteredModel | None:
    return session.scalar(select(RegisteredModel).where(RegisteredModel.namespace == namespace, RegisteredModel.name == name))


def get(session: Session, caller: Caller, namespace: str, name: str) -> RegisteredModel:
    caller.require(Action.READ, namespace)
    model = _find(session, namespace, name)
    if model is None:
        raise NotFound(f"model {name!r} does not exist in namespace {namespace!r}")
    return model


def list_in(session: Session, caller: Caller, namespace: str) -> list[RegisteredModel]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    return list(
        session.scalars(select(RegisteredModel).where(RegisteredModel.namespace == namespace).order_by(RegisteredModel.name))
    )


def update(
    session: Session,
    caller: Caller,
    namespace: str,
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    caller.require(Action.WRITE, namespace)
    model = get(session, caller, namespace, name)
    if description is not None:
        model.description = description
    if tags:
        model.tags = {**model.tags, **tags}
    model.updated_at = now_ms()
    return model


def create_version(
    session: Session, caller: Caller, store: ArtifactStore, namespace: str, name: str, draft: VersionDraft
) -> ModelVersion:
    caller.require(Action.WRITE, namespace)
    model = get(session, caller, namespace, name)
    if draft.format not in FORMATS:
        raise InvalidInput(f"model format {draft.format!r} is unknown: expected one of {', '.join(FORMATS)}")
    if draft.format == PICKLE and not draft.trust_pickle:
        raise UntrustedModel(
            "pickle models can run arbitrary code when loaded and are refused by default: save the model "
            "with skops or ONNX, or pass trust_pickle=True if you trust its source"
        )
    validate_digest(draft.artifact_digest)
    held = blobs.require_held(session, namespace, draft.artifact_digest)
    if not store.exists(draft.artifact_digest):
        raise InvalidInput(f"artifact {draft.artifact_digest} is not in the artifact store: upload it again before registering")
    onnx_size = _onnx_size(session, store, namespace, draft)
    _check_profile(session, store, namespace, draft.profile_digest)
    metrics = dict(draft.metrics or {})
    code_version = draft.code_version or ""
    if draft.run_id is not None:
        run = runs.get(session, caller, namespace, draft.run_id)
        if draft.metrics is None:
            metrics = {m.key: m.value for m in runs.latest_metrics_of(session, run.id) if m.value is not None}
        code_version = code_version or run.code_version
    datasets = [_dataset(d) for d in draft.datasets]
    # Lock the model row so concurrent registrations get distinct version numbers.
    session.execute(select(RegisteredModel.id).where(RegisteredModel.id == model.id).with_for_update())
    latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)) or 0
    version = ModelVersion(
        model_id=model.id,
        namespace=namespace,
        version=latest + 1,
        artifact_digest=draft.artifact_digest,
        artifact_size=held.size,
        format=draft.format,
        onnx_digest=draft.onnx_digest,
        onnx_size=onnx_size,
        profile_digest=draft.profile_digest,
        signature=draft.signature,
        metrics=metrics,
        run_id=draft.run_id,
        datasets=datasets,
        code_version=code_version,
        description=draft.description,
        tags=dict(draft.tags),
        created_by=caller.name,
    )
    session.add(version)
    model.updated_at = now_ms()
    session.flush()
    return version


def _onnx_size(session: Session, store: ArtifactStore, namespace: str, draft: VersionDraft) -> int | None:
    """The ONNX companion passes the same checks as the main artifact: the namespace must hold it."""
    if draft.onnx_digest is None:
        return None
    if draft.format == ONNX:
        raise InvalidInput("the version's main artifact is already ONNX: register it without onnx_digest")
    validate_digest(draft.onnx_digest)
    held = blobs.require_held(session, namespace, draft.onnx_digest)
    if not store.exists(draft.onnx_digest):
        raise InvalidInput(f"ONNX artifact {draft.onnx_digest} is not in the artifact store: upload it again before registering")
    return held.size


def _check_profile(session: Session, store: ArtifactStore, namespace: str, digest: str | None) -> None:
    """A reference profile passes the artifact's checks, and must read back as a profile."""
    if digest is None:
        return
    from shipyard.monitoring.reference import MAX_PROFILE_BYTES, load_profile  # pandas only when a profile comes

    validate_digest(digest)
    held = blobs.require_held(session, namespace, digest)
    if not store.exists(digest):
        raise InvalidInput(f"profile {digest} is not in the artifact store: upload it again before registering")
    if held.size > MAX_PROFILE_BYTES:
        raise InvalidInput(
            f"profile {digest} is {held.size} bytes: expected a profile (Profile.to_dict() as JSON) of at most "
            f"{MAX_PROFILE_BYTES} bytes; profile fewer columns"
        )
    load_profile(store, namespace, digest)


def _dataset(entry: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str) or not entry["digest"]:
        raise InvalidInput(f"dataset entry {entry!r} is not valid: expected {{'name': ..., 'digest': ...}}")
    return {
        "name": str(entry.get("name", "")),
        "digest": entry["digest"],
        **{k: v for k, v in entry.items() if k not in ("name", "digest")},
    }


def get_version(session: Session, caller: Caller, namespace: str, name: str, version: int) -> ModelVersion:
    model = get(session, caller, namespace, name)
    row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version))
    if row is None:
        raise NotFound(f"model {name!r} has no version {version} in namespace {namespace!r}")
    return row


def list_versions(session: Session, caller: Caller, namespace: str, name: str) -> list[ModelVersion]:
    model = get(session, caller, namespace, name)
    return list(session.scalars(select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)))


def update_version(
    session: Session, caller: Caller, namespace: str, name: str, version: int, *, description: str
) -> ModelVersion:
    """Only the description may change: what a version is stays fixed."""
    caller.require(Action.WRITE, namespace)
    row = get_version(session, caller, namespace, name, version)
    row.description = description
    return row
