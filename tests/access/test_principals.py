from __future__ import annotations

import re

import pytest

from shipyard.access import principals
from shipyard.access.caller import Caller
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from tests.conftest import OTHER, TEAM, MakeCaller


def test_users_are_platform_wide_and_unique(platform: Platform) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        alice = principals.create_user(session, system, "alice@example.com", display_name="Alice")
        assert (alice.kind, alice.namespace, alice.display_name) == (principals.USER, "", "Alice")
        with pytest.raises(AlreadyExists, match=re.escape("user 'alice@example.com' already exists")):
            principals.create_user(session, system, "alice@example.com")
        for bad in ("", " alice", "alice!", "-alice"):
            with pytest.raises(InvalidInput, match="name"):
                principals.create_user(session, system, bad)


def test_service_accounts_are_unique_per_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        first = principals.create_service_account(session, system, TEAM, "trainer")
        second = principals.create_service_account(session, system, OTHER, "trainer")
        user = principals.create_user(session, system, "trainer")
        assert len({first.id, second.id, user.id}) == 3
        assert (first.kind, first.namespace) == (principals.SERVICE_ACCOUNT, TEAM)
        with pytest.raises(AlreadyExists, match=f"in namespace '{TEAM}'"):
            principals.create_service_account(session, system, TEAM, "trainer")
        with pytest.raises(NotVisible):
            principals.create_service_account(session, system, "missing", "trainer")


def test_who_may_create_principals(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    editor = make_caller({TEAM: "editor"})
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match="platform admin"):
            principals.create_user(session, admin, "mallory")
        principals.create_service_account(session, admin, TEAM, "robot")
        with pytest.raises(PermissionDenied):
            principals.create_service_account(session, editor, TEAM, "robot-2")
        with pytest.raises(NotVisible):
            principals.create_service_account(session, admin, OTHER, "robot")


def test_get_user_is_for_self_admins_and_namespace_admins(platform: Platform, make_caller: MakeCaller) -> None:
    with platform.db.session(write=True) as session:
        principals.create_user(session, Caller.system(), "bob")
    editor = make_caller({TEAM: "editor"})
    admin = make_caller({TEAM: "admin"})
    with platform.db.session() as session:
        assert principals.get_user(session, Caller.system(), "bob").name == "bob"
        assert principals.get_user(session, admin, "bob").name == "bob"
        assert principals.get_user(session, editor, editor.name).id == editor.principal_id
        with pytest.raises(NotFound, match="'bob' does not exist"):
            principals.get_user(session, editor, "bob")
        with pytest.raises(NotFound):
            principals.get_user(session, Caller.system(), "nobody")


def test_service_account_lookup_and_listing(platform: Platform, make_caller: MakeCaller) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        for name in ("zed", "alpha", "mid"):
            principals.create_service_account(session, system, TEAM, name)
    viewer = make_caller({TEAM: "viewer"})
    outsider = make_caller({OTHER: "admin"})
    with platform.db.session() as session:
        assert [p.name for p in principals.list_service_accounts(session, viewer, TEAM)] == ["alpha", "mid", "zed"]
        assert principals.get_service_account(session, viewer, TEAM, "mid").namespace == TEAM
        with pytest.raises(NotFound, match="'ghost'"):
            principals.get_service_account(session, viewer, TEAM, "ghost")
        with pytest.raises(NotVisible):
            principals.get_service_account(session, outsider, TEAM, "mid")
        with pytest.raises(NotVisible):
            principals.list_service_accounts(session, outsider, TEAM)


def test_list_users_needs_a_platform_admin(platform: Platform, make_caller: MakeCaller) -> None:
    member = make_caller({TEAM: "admin"})
    with platform.db.session() as session:
        names = [p.name for p in principals.list_users(session, Caller.system())]
        assert names == sorted(names)
        assert {"admin", member.name} <= set(names)
        with pytest.raises(PermissionDenied):
            principals.list_users(session, member)


def test_set_disabled_permissions(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    editor = make_caller({TEAM: "editor"})
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, admin, TEAM, "robot")
        user = principals.create_user(session, Caller.system(), "carol")
        assert principals.set_disabled(session, admin, account, True).disabled
        with pytest.raises(PermissionDenied):
            principals.set_disabled(session, editor, account, False)
        with pytest.raises(PermissionDenied, match="platform admin"):
            principals.set_disabled(session, admin, user, True)
        assert principals.set_disabled(session, Caller.system(), user, True).disabled
        assert not principals.set_disabled(session, Caller.system(), user, False).disabled


def test_get_by_id(platform: Platform) -> None:
    with platform.db.session(write=True) as session:
        user = principals.create_user(session, Caller.system(), "dave")
        assert principals.get_by_id(session, user.id).name == "dave"
        with pytest.raises(NotFound):
            principals.get_by_id(session, "f" * 32)
