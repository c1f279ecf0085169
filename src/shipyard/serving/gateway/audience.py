"""Who may call an endpoint: the audience rule, and a cache of token introspections.

Tokens are checked by the control plane (``POST /api/v1/tokens:introspect``); the answer,
active or not, is kept for ``SHIPYARD_GATEWAY_TOKEN_TTL_SECONDS`` under the SHA-256 of the
token, so the plaintext is never held and a burst of requests costs one round trip.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import NotFound, PermissionDenied, Unauthenticated

ALL_NAMESPACES = "*"
PLATFORM_ADMIN = "platform-admin"
INVOKE_PREFIX = "invoke:"
MAX_CACHED_TOKENS = 10_000


@dataclass(frozen=True, slots=True)
class Audience:
    namespace: bool = True
    principals: frozenset[str] = frozenset()
    anonymous: bool = False

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> Audience:
        data = data or {}
        return cls(
            namespace=bool(data.get("namespace", True)),
            principals=frozenset(str(p) for p in data.get("principals") or ()),
            anonymous=bool(data.get("anonymous", False)),
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """An introspected token."""

    active: bool
    principal: str = ""
    roles: Mapping[str, str] | None = None
    scopes: frozenset[str] = frozenset()
    token_namespace: str = ""
    expires_at: int | None = None  # ms since the epoch

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Identity:
        if not data.get("active"):
            return cls(active=False)
        expires = data.get("expires_at")
        return cls(
            active=True,
            principal=str(data.get("principal", "")),
            roles={str(k): str(v) for k, v in (data.get("roles") or {}).items()},
            scopes=frozenset(str(s) for s in data.get("scopes") or ()),
            token_namespace=str(data.get("token_namespace") or ""),
            expires_at=int(expires) if expires is not None else None,
        )

    def usable(self, now_ms: int) -> bool:
        return self.active and (self.expires_at is None or self.expires_at > now_ms)

    @property
    def platform_admin(self) -> bool:
        return (self.roles or {}).get(ALL_NAMESPACES) == PLATFORM_ADMIN and not self.token_namespace

    def knows(self, namespace: str) -> bool:
        """Whether the principal may know the namespace exists (else denials look like 404)."""
        roles = self.roles or {}
        return (
            namespace in roles
            or roles.get(ALL_NAMESPACES) == PLATFORM_ADMIN
            or self.token_namespace == namespace
            or self.principal.startswith(f"sa:{namespace}/")
        )


def authorize(namespace: str, endpoint: str, audience: Audience, identity: Identity | None) -> None:
    """Raise unless ``identity`` may call ``namespace/endpoint``: 401 no or bad token, 404 other namespace, 403 not invited."""
    if audience.anonymous:
        return
    if identity is None:
        raise Unauthenticated("this endpoint needs a token: send 'Authorization: Bearer <token>'")
    if not identity.usable(int(time.time() * 1000)):
        raise Unauthenticated("the token is not valid, revoked or expired: create a new one")
    if identity.token_namespace and identity.token_namespace != namespace:
        raise NotFound(f"endpoint {namespace}/{endpoint} not found")
    roles = identity.roles or {}
    member = namespace in roles or roles.get(ALL_NAMESPACES) == PLATFORM_ADMIN
    if audience.namespace and member:
        return
    if identity.principal in audience.principals:
        return
    # An endpoint-scoped token only ever reaches endpoints of the namespace it is confined to.
    if identity.token_namespace == namespace and f"{INVOKE_PREFIX}{endpoint}" in identity.scopes:
        return
    if not identity.knows(namespace):
        raise NotFound(f"endpoint {namespace}/{endpoint} not found")
    raise PermissionDenied(f"{identity.principal} is not in the audience of endpoint {namespace}/{endpoint}")


class TokenCache:
    """Introspection answers (negative ones too) by token hash, each kept for ``ttl`` seconds."""

    def __init__(
        self,
        introspect: Callable[[str], Mapping[str, Any]],
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._introspect = introspect
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Identity]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def cached(self, token: str) -> Identity | None:
        """The cached answer, if still fresh; never blocks on the network."""
        entry = self._entries.get(self.key(token))
        if entry is None or entry[0] <= self._clock():
            return None
        return entry[1]

    def lookup(self, token: str) -> Identity:
        """The cached answer, else ask the control plane (blocking) and remember its answer."""
        found = self.cached(token)
        if found is not None:
            return found
        identity = Identity.parse(self._introspect(token))
        with self._lock:
            if len(self._entries) >= MAX_CACHED_TOKENS:
                self._evict()
            self._entries[self.key(token)] = (self._clock() + self._ttl, identity)
        return identity

    def _evict(self) -> None:
        now = self._clock()
        fresh = {k: v for k, v in self._entries.items() if v[0] > now}
        # Under a flood of distinct tokens, start over rather than grow without bound.
        self._entries = fresh if len(fresh) < MAX_CACHED_TOKENS else {}
