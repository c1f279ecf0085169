from __future__ import annotations

import pytest

from shipyard.access import bindings, principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import ALL_NAMESPACES, Action, Role
from shipyard.errors import InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.store.models import Principal
from tests.conftest import OTHER, TEAM, MakeCaller


def _user(platform: Platform, name: str) -> Principal:
    with platform.db.session(write=True) as session:
        return principals.create_user(session, Caller.system(), name)


def _bindings_of(platform: Platform, principal: Principal) -> dict[str, str]:
    with platform.db.session(write=True) as session:
        issued = tokens.issue(session, Caller.system(), principal)
        return dict(tokens.authenticate(session, issued.plaintext).bindings)


def test_grant_then_regrant_replaces_the_role(platform: Platform, teams: tuple[str, str]) -> None:
    alice = _user(platform, "alice")
    system = Caller.system()
    with platform.db.session(write=True) as session:
        first = bindings.grant(session, system, alice, TEAM, Role.VIEWER)
        second = bindings.grant(session, system, alice, TEAM, Role.OPERATOR)
        assert first.id == second.id
        assert second.created_by == system.name
    assert _bindings_of(platform, alice) == {TEAM: "operator"}
    with platform.db.session() as session:
        listed = bindings.list_in(session, system, TEAM)
    assert [(b.role, p.name) for b, p in listed] == [("operator", "alice")]


def test_list_in_is_sorted_by_principal_name(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    names = ["carol", "alice", "bob"]
    for name in names:
        user = _user(platform, name)
        with platform.db.session(write=True) as session:
            bindings.grant(session, system, user, TEAM, Role.EDITOR)
    with platform.db.session() as session:
        assert [p.name for _, p in bindings.list_in(session, system, TEAM)] == sorted(names)
        with pytest.raises(NotVisible):
            bindings.list_in(session, system, "missing")


def test_platform_admin_is_granted_on_star_only_and_to_users_only(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    alice = _user(platform, "alice")
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, system, TEAM, "robot")
    with platform.db.session(write=True) as session:
        with pytest.raises(InvalidInput, match="'\\*' only"):
            bindings.grant(session, system, alice, TEAM, Role.PLATFORM_ADMIN)
        with pytest.raises(InvalidInput, match="'\\*' only"):
            bindings.grant(session, system, alice, ALL_NAMESPACES, Role.EDITOR)
        with pytest.raises(InvalidInput, match="for people"):
            bindings.grant(session, system, account, ALL_NAMESPACES, Role.PLATFORM_ADMIN)
        bindings.grant(session, system, alice, ALL_NAMESPACES, Role.PLATFORM_ADMIN)
    assert _bindings_of(platform, alice) == {ALL_NAMESPACES: "platform-admin"}


def test_only_platform_admins_grant_platform_admin(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    bob = _user(platform, "bob")
    with platform.db.session(write=True) as session, pytest.raises(PermissionDenied, match="platform admin"):
        bindings.grant(session, admin, bob, ALL_NAMESPACES, Role.PLATFORM_ADMIN)


def test_service_accounts_hold_roles_in_their_own_namespace_only(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, system, TEAM, "robot")
        bindings.grant(session, system, account, TEAM, Role.EDITOR)
        with pytest.raises(InvalidInput, match="belongs to namespace"):
            bindings.grant(session, system, account, OTHER, Role.VIEWER)


def test_namespace_admins_manage_members_of_their_namespace(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    editor = make_caller({TEAM: "editor"})
    bob = _user(platform, "bob")
    with platform.db.session(write=True) as session:
        bindings.grant(session, admin, bob, TEAM, Role.VIEWER)
        with pytest.raises(PermissionDenied):
            bindings.grant(session, editor, bob, TEAM, Role.ADMIN)
        with pytest.raises(NotVisible):
            bindings.grant(session, admin, bob, OTHER, Role.VIEWER)
    assert _bindings_of(platform, bob) == {TEAM: "viewer"}
    with platform.db.session(write=True) as session:
        bindings.revoke(session, admin, bob, TEAM)
    assert _bindings_of(platform, bob) == {}


def test_members_may_list_but_not_change(platform: Platform, make_caller: MakeCaller) -> None:
    viewer = make_caller({TEAM: "viewer"})
    with platform.db.session() as session:
        listed = bindings.list_in(session, viewer, TEAM)
        assert [p.id for _, p in listed] == [viewer.principal_id]
        with pytest.raises(PermissionDenied, match="platform admin"):
            bindings.list_in(session, viewer, ALL_NAMESPACES)


def test_revoke_errors(platform: Platform, admin_token: str, teams: tuple[str, str]) -> None:
    bob = _user(platform, "bob")
    with platform.db.session(write=True) as session:
        admin = tokens.authenticate(session, admin_token)
        me = session.get_one(Principal, admin.principal_id)
        with pytest.raises(NotFound, match="holds no role"):
            bindings.revoke(session, admin, bob, TEAM)
        with pytest.raises(InvalidInput, match="your own platform-admin"):
            bindings.revoke(session, admin, me, ALL_NAMESPACES)
    with platform.db.session(write=True) as session:
        bindings.grant(session, admin, bob, ALL_NAMESPACES, Role.PLATFORM_ADMIN)
        bindings.revoke(session, admin, bob, ALL_NAMESPACES)
    assert _bindings_of(platform, bob) == {}


def test_a_grant_takes_effect_on_the_next_authentication(platform: Platform, teams: tuple[str, str]) -> None:
    bob = _user(platform, "bob")
    with platform.db.session(write=True) as session:
        plaintext = tokens.issue(session, Caller.system(), bob).plaintext
    with platform.db.session() as session:
        assert not tokens.authenticate(session, plaintext).can(Action.READ, TEAM)
    with platform.db.session(write=True) as session:
        bindings.grant(session, Caller.system(), bob, TEAM, Role.VIEWER)
    with platform.db.session() as session:
        assert tokens.authenticate(session, plaintext).can(Action.READ, TEAM)
