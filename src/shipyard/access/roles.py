"""Roles and what each may do.

Namespace roles are cumulative: viewer < editor < operator < admin. ``platform-admin``
is bound on the namespace ``*`` and may do everything everywhere.
"""

from __future__ import annotations

import re
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


# "invoke:<endpoint>" lets a token call one serving endpoint of its namespace and nothing else.
INVOKE_PREFIX = "invoke:"
_INVOKE = re.compile(r"^invoke:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def validate_scopes(scopes: list[str]) -> list[str]:
    if not scopes:
        raise InvalidInput(f"a token needs at least one scope: expected some of {', '.join(SCOPES)} or invoke:<endpoint>")
    unknown = [s for s in scopes if s not in SCOPE_ACTIONS and not _INVOKE.match(s)]
    if unknown:
        raise InvalidInput(f"scopes {unknown} are unknown: expected some of {', '.join(SCOPES)} or invoke:<endpoint>")
    return sorted(set(scopes))


def invoke_scopes(scopes: list[str]) -> list[str]:
    """The endpoints named by ``invoke:`` scopes."""
    return [s[len(INVOKE_PREFIX) :] for s in scopes if s.startswith(INVOKE_PREFIX)]


def actions_for_scopes(scopes: list[str]) -> frozenset[Action]:
    allowed: set[Action] = set()
    for scope in scopes:
        allowed |= SCOPE_ACTIONS.get(scope, frozenset())
    return frozenset(allowed)
