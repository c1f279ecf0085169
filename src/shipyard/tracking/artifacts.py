"""Run artifacts: named files of a run, each pointing at a blob in the artifact store."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import blobs
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.artifacts import StoredBlob, validate_artifact_path
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.models import RunArtifact, now_ms
from shipyard.tracking import runs

MEDIA_TYPE_LENGTH = 255


def check_upload(session: Session, caller: Caller, namespace: str, run_id: str, path: str) -> str:
    """Authorise an upload before any byte is read; returns the normalised path."""
    caller.require(Action.WRITE, namespace)
    run = runs.get(session, caller, namespace, run_id)
    if run.lifecycle_stage != "active":
        raise InvalidInput(f"run {run_id!r} is deleted: restore it before uploading to it")
    return validate_artifact_path(path)


def record(
    session: Session, caller: Caller, namespace: str, run_id: str, path: str, blob: StoredBlob, media_type: str
) -> RunArtifact:
    """Point ``path`` of the run at ``blob`` (uploaded already); a later upload replaces it."""
    path = check_upload(session, caller, namespace, run_id, path)
    media_type = (media_type or "application/octet-stream")[:MEDIA_TYPE_LENGTH]
    artifact = session.get(RunArtifact, (run_id, path))
    if artifact is None:
        artifact = RunArtifact(
            run_id=run_id, path=path, digest=blob.digest, size=blob.size, media_type=media_type, created_by=caller.name
        )
        session.add(artifact)
    else:
        artifact.digest, artifact.size, artifact.media_type = blob.digest, blob.size, media_type
        artifact.created_at, artifact.created_by = now_ms(), caller.name
    blobs.claim(session, caller, namespace, blob)
    session.flush()
    return artifact


def list_for(session: Session, caller: Caller, namespace: str, run_id: str, prefix: str = "") -> list[RunArtifact]:
    runs.get(session, caller, namespace, run_id)
    stmt = select(RunArtifact).where(RunArtifact.run_id == run_id).order_by(RunArtifact.path)
    if prefix:
        prefix = validate_artifact_path(prefix.rstrip("/"))
        stmt = stmt.where(RunArtifact.path.startswith(prefix + "/", autoescape=True) | (RunArtifact.path == prefix))
    return list(session.scalars(stmt))


def get(session: Session, caller: Caller, namespace: str, run_id: str, path: str) -> RunArtifact:
    runs.get(session, caller, namespace, run_id)
    artifact = session.get(RunArtifact, (run_id, validate_artifact_path(path)))
    if artifact is None:
        raise NotFound(f"run {run_id!r} has no artifact {path!r}: list them with 'shipyard runs artifacts {run_id}'")
    return artifact
