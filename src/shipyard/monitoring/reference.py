"""Reference profiles of registered model versions: read from the artifact store, kept in a small cache.

A version registered with training data carries ``profile_digest``: a JSON blob holding
``Profile.to_dict()`` of its training inputs and of its predictions on them (column
``prediction``), built by the SDK (``monitoring.training``). Monitors compare windows of
the prediction log against it, so they never need the raw training data.

Blobs are content-addressed, so a digest always names the same profile: parsed profiles
are cached by digest (the last ``CACHE_SIZE``), and a monitor polling every few seconds
reads and parses each profile once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.artifacts import ArtifactStore
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.profile import Profile
from shipyard.store.models import ModelVersion, RegisteredModel

CACHE_SIZE = 32
MAX_PROFILE_BYTES = 64 * 1024 * 1024


class _Cache:
    """Parsed profiles by digest, least recently used dropped first; safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Profile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Profile | None:
        with self._lock:
            found = self._items.get(digest)
            if found is not None:
                self._items.move_to_end(digest)
            return found

    def put(self, digest: str, profile: Profile) -> None:
        with self._lock:
            self._items[digest] = profile
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_cache = _Cache(CACHE_SIZE)


def load_profile(artifacts: ArtifactStore, namespace: str, digest: str) -> Profile:
    """The profile stored under ``digest`` (a blob of ``namespace``; the caller checked access)."""
    cached = _cache.get(digest)
    if cached is not None:
        return cached
    if not artifacts.exists(digest):
        raise NotFound(f"reference profile {digest} of namespace {namespace!r} is not in the artifact store")
    try:
        data = orjson.loads(artifacts.get_bytes(digest))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"blob {digest} is not a reference profile: expected JSON written from Profile.to_dict(), got bytes that "
            f"do not parse ({exc}); upload the profile again"
        ) from exc
    profile = Profile.from_dict(data)
    _cache.put(digest, profile)
    return profile


def profile_of(session: Session, artifacts: ArtifactStore, namespace: str, model: str, version: int) -> Profile | None:
    """The reference profile of ``model`` v``version`` in ``namespace``, or None when it was registered without one."""
    digest = session.execute(
        select(ModelVersion.profile_digest)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.namespace == namespace, RegisteredModel.name == model, ModelVersion.version == version)
    ).first()
    if digest is None:
        raise NotFound(f"model {model!r} has no version {version} in namespace {namespace!r}")
    return load_profile(artifacts, namespace, digest[0]) if digest[0] is not None else None


def missing_message(model: str, version: int) -> str:
    """What to say when a version has no profile: how to get one."""
    return (
        f"model {model!r} v{version} has no reference profile: it was registered without training data or with "
        "profile=False. Register a new version with Client.register_model(name, model, training_data=X), which "
        "profiles X and the model's predictions on it"
    )
