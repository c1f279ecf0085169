"""Fixtures for the access tests: a team namespace and callers built from real tokens."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest

from shipyard.access import bindings, namespaces, principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import Role
from shipyard.runtime import Platform

TEAM = "team-a"
OTHER = "team-b"
ALL_SCOPES = ("read", "write", "promote", "admin")

MakeCaller = Callable[..., Caller]


@pytest.fixture
def teams(platform: Platform) -> tuple[str, str]:
    with platform.db.session(write=True) as session:
        namespaces.create(session, Caller.system(), TEAM)
        namespaces.create(session, Caller.system(), OTHER)
    return TEAM, OTHER


@pytest.fixture
def make_caller(platform: Platform, teams: tuple[str, str]) -> MakeCaller:
    """A new user holding ``roles`` ({namespace: role}), authenticated through a fresh token."""
    counter = itertools.count(1)

    def make(roles: dict[str, str] | None = None, *, scopes: Sequence[str] = ALL_SCOPES, token_namespace: str = "") -> Caller:
        system = Caller.system()
        with platform.db.session(write=True) as session:
            user = principals.create_user(session, system, f"user-{next(counter)}")
            for namespace, role in (roles or {}).items():
                bindings.grant(session, system, user, namespace, Role.parse(role))
            issued = tokens.issue(session, system, user, scopes=list(scopes), namespace=token_namespace)
        with platform.db.session() as session:
            return tokens.authenticate(session, issued.plaintext)

    return make
