"""Roles and what each may do.

Namespace roles are cumulative: viewer < editor < operator < admin. ``platform-admin``
is bound on the namespace ``*`` and may do everything everywhere.
"""

from __future__ import annotations

from enum import StrEnum

from shipyard.errors import InvalidInput

ALL_NAMESPACES = "*"


class Action(StrEnum):
    READ = "read"  # see records in the namespace
    WRITE = "write"  # create and change experiments, runs, models, versions
    PROMOTE = "promote"  # move aliases, roll back, deploy
    ADMIN = "admin"  # manage members, service accounts and tokens of the namespace


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    OPERATOR = "operator"
    ADMIN = "admin"
    PLATFORM_ADMIN = "platform-admin"

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise InvalidInput(f"role {value!r} is unknown: expected one of {allowed}") from None


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.EDITOR: frozenset({Action.READ, Action.WRITE}),
    Role.OPERATOR: frozenset({Action.READ, Action.WRITE, Action.PROMOTE}),
    Role.ADMIN: frozenset(Action),
    Role.PLATFORM_ADMIN: frozenset(Action),
}

# Token scopes narrow what a token may do below its principal's roles.
SCOPES: tuple[str, ...] = ("read", "write", "promote", "admin")
SCOPE_ACTIONS: dict[str, frozenset[Action]] = {
    "read": frozenset({Action.READ}),
    "write": frozenset({Action.READ, Action.WRITE}),
    "promote": frozenset({Action.READ, Action.PROMOTE}),
    "admin": frozenset(Action),
}


def validate_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise InvalidInput(f"a token needs at least one scope: expected some of {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPE_ACTIONS]
    if unknown:
        raise InvalidInput(f"scopes {unknown} are unknown: expected some of {', '.join(SCOPES)}")
    return sorted(set(scopes))


def actions_for_scopes(scopes: list[str]) -> frozenset[Action]:
    allowed: set[Action] = set()
    for scope in scopes:
        allowed |= SCOPE_ACTIONS.get(scope, frozenset())
    return frozenset(allowed)
