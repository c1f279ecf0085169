"""Blob ownership: the artifact store is shared and content-addressed, tenancy is not.

A namespace may use a digest (register it as a model version, say) only if bytes with
that digest were uploaded into that namespace. Knowing another team's digest is not
enough to read their model.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.artifacts import StoredBlob, validate_digest
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.models import NamespaceBlob


def claim(session: Session, caller: Caller, namespace: str, blob: StoredBlob) -> None:
    """Record that ``namespace`` holds ``blob`` (its bytes were just uploaded there)."""
    caller.require(Action.WRITE, namespace)
    if session.get(NamespaceBlob, (namespace, blob.digest)) is None:
        session.add(NamespaceBlob(namespace=namespace, digest=blob.digest, size=blob.size, created_by=caller.name))
        session.flush()


def require_held(session: Session, namespace: str, digest: str) -> NamespaceBlob:
    held = session.get(NamespaceBlob, (namespace, digest))
    if held is None:
        raise InvalidInput(
            f"artifact {digest} has not been uploaded to namespace {namespace!r}: upload the file "
            "(PUT /namespaces/{namespace}/blobs, or Client.register_model does it) before registering it"
        )
    return held


def readable(session: Session, caller: Caller, namespace: str, digest: str) -> NamespaceBlob:
    """A blob ``caller`` may read back: one uploaded into ``namespace``, which the caller may read."""
    caller.require(Action.READ, namespace)
    try:
        held = session.get(NamespaceBlob, (namespace, validate_digest(digest)))
    except InvalidInput:
        held = None
    if held is None:
        raise NotFound(f"blob {digest!r} has not been uploaded to namespace {namespace!r}")
    return held
