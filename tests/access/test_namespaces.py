from __future__ import annotations

import pytest
from sqlalchemy import select

from shipyard.access import bindings, namespaces, principals, tokens
from shipyard.access.bootstrap import DEFAULT_NAMESPACE
from shipyard.access.caller import Caller
from shipyard.access.roles import Role
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotVisible, PermissionDenied, Unauthenticated
from shipyard.runtime import Platform
from shipyard.store.models import RoleBinding, Token
from shipyard.tracking import experiments
from tests.conftest import OTHER, TEAM, MakeCaller


def test_create_and_get(platform: Platform) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        created = namespaces.create(session, system, TEAM, description="Team A", labels={"cost-centre": "42"})
    with platform.db.session() as session:
        found = namespaces.get(session, system, TEAM)
    assert found.id == created.id
    assert (found.description, found.labels, found.created_by) == ("Team A", {"cost-centre": "42"}, system.name)


def test_create_refuses_duplicates_and_bad_names(platform: Platform) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        namespaces.create(session, system, TEAM)
        with pytest.raises(AlreadyExists, match=TEAM):
            namespaces.create(session, system, TEAM)
        for bad in ("Team-A", "-a", "a_b", "x" * 64, ""):
            with pytest.raises(InvalidInput, match="namespace name"):
                namespaces.create(session, system, bad)


def test_only_platform_admins_create_or_delete(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    with platform.db.session(write=True) as session:
        with pytest.raises(PermissionDenied, match="platform admin"):
            namespaces.create(session, admin, "team-c")
        with pytest.raises(PermissionDenied, match="platform admin"):
            namespaces.delete(session, admin, TEAM)


def test_list_visible_shows_members_their_namespaces(platform: Platform, make_caller: MakeCaller) -> None:
    member = make_caller({OTHER: "viewer"})
    with platform.db.session() as session:
        everything = [n.name for n in namespaces.list_visible(session, Caller.system())]
        assert everything == sorted([DEFAULT_NAMESPACE, TEAM, OTHER])
        assert [n.name for n in namespaces.list_visible(session, member)] == [OTHER]


def test_get_answers_outsiders_as_if_missing(platform: Platform, make_caller: MakeCaller) -> None:
    outsider = make_caller({OTHER: "admin"})
    with platform.db.session() as session:
        with pytest.raises(NotVisible) as hidden:
            namespaces.get(session, outsider, TEAM)
        with pytest.raises(NotVisible) as missing:
            namespaces.get(session, Caller.system(), "no-such-team")
    assert str(hidden.value).replace(TEAM, "X") == str(missing.value).replace("no-such-team", "X")


def test_delete_refuses_namespaces_in_use(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        experiments.create(session, system, TEAM, "churn")
    with platform.db.session(write=True) as session, pytest.raises(Conflict, match="1 experiments or models"):
        namespaces.delete(session, system, TEAM)


def test_delete_removes_bindings_service_accounts_and_their_tokens(platform: Platform, teams: tuple[str, str]) -> None:
    system = Caller.system()
    with platform.db.session(write=True) as session:
        alice = principals.create_user(session, system, "alice")
        bindings.grant(session, system, alice, TEAM, Role.EDITOR)
        account = principals.create_service_account(session, system, TEAM, "robot")
        plaintext = tokens.issue(session, system, account).plaintext
        account_id = account.id
    with platform.db.session(write=True) as session:
        namespaces.delete(session, system, TEAM)
    with platform.db.session() as session:
        assert session.scalars(select(RoleBinding).where(RoleBinding.namespace == TEAM)).all() == []
        assert session.scalars(select(Token).where(Token.principal_id == account_id)).all() == []
        with pytest.raises(NotVisible):
            namespaces.get(session, system, TEAM)
        with pytest.raises(Unauthenticated):
            tokens.authenticate(session, plaintext)
        assert principals.get_user(session, system, "alice").id == alice.id
        assert [n.name for n in namespaces.list_visible(session, system)] == sorted([DEFAULT_NAMESPACE, OTHER])
