"""Who is calling, and the one place that decides whether they may."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.access.roles import ALL_NAMESPACES, ROLE_ACTIONS, Action, Role, actions_for_scopes
from shipyard.errors import NotVisible, PermissionDenied

SYSTEM = "system:shipyard"


@dataclass(frozen=True)
class Caller:
    """An authenticated principal, its role bindings and its token's limits."""

    principal_id: str
    name: str
    kind: str
    bindings: Mapping[str, Role] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset({"admin"})
    token_namespace: str = ""
    token_id: str = ""

    @classmethod
    def system(cls) -> Caller:
        """The platform itself, for bootstrap and loops that run inside ``shipyard up``."""
        return cls(principal_id="", name=SYSTEM, kind="system", bindings={ALL_NAMESPACES: Role.PLATFORM_ADMIN})

    @property
    def is_platform_admin(self) -> bool:
        return self.bindings.get(ALL_NAMESPACES) == Role.PLATFORM_ADMIN and "admin" in self.scopes and not self.token_namespace

    def role_in(self, namespace: str) -> Role | None:
        if self.token_namespace and namespace != self.token_namespace:
            return None
        if self.bindings.get(ALL_NAMESPACES) == Role.PLATFORM_ADMIN:
            return Role.PLATFORM_ADMIN
        return self.bindings.get(namespace)

    def can(self, action: Action, namespace: str) -> bool:
        role = self.role_in(namespace)
        if role is None:
            return False
        return action in ROLE_ACTIONS[role] and action in actions_for_scopes(sorted(self.scopes))

    def visible_namespaces(self) -> list[str] | None:
        """Namespaces this caller may read; ``None`` means all of them."""
        if self.role_in(ALL_NAMESPACES) == Role.PLATFORM_ADMIN and not self.token_namespace:
            return None
        if self.token_namespace:
            return [self.token_namespace] if self.can(Action.READ, self.token_namespace) else []
        return sorted(ns for ns in self.bindings if ns != ALL_NAMESPACES and self.can(Action.READ, ns))

    def require(self, action: Action, namespace: str) -> None:
        """Raise unless allowed. Outsiders get 404 so a namespace's existence does not leak."""
        if self.can(action, namespace):
            return
        if not self.can(Action.READ, namespace):
            raise NotVisible(f"namespace {namespace!r} does not exist or you are not a member of it")
        role = self.role_in(namespace)
        raise PermissionDenied(
            f"{self.name} may not {action.value} in namespace {namespace!r}: "
            f"role {role.value if role else 'none'} with token scopes {sorted(self.scopes)}; "
            f"ask a namespace admin for a role that allows {action.value!r}"
        )

    def require_platform_admin(self, what: str) -> None:
        if not self.is_platform_admin:
            raise PermissionDenied(f"only a platform admin may {what}; {self.name} is not one")
