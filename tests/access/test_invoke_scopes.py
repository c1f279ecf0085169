"""``invoke:<endpoint>`` token scopes, and token introspection for platform components."""

from __future__ import annotations

import pytest

from shipyard.access import bindings, principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import Action, Role, actions_for_scopes, invoke_scopes, validate_scopes
from shipyard.errors import InvalidInput, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.store.models import Token, now_ms
from tests.conftest import OTHER, TEAM, MakeCaller

SYSTEM = Caller.system()


def _user(platform: Platform, name: str, roles: dict[str, str] | None = None) -> str:
    with platform.db.session(write=True) as session:
        user = principals.create_user(session, SYSTEM, name)
        for namespace, role in (roles or {}).items():
            bindings.grant(session, SYSTEM, user, namespace, Role.parse(role))
        return user.id


def _issue(platform: Platform, principal_id: str, scopes: list[str], namespace: str = "") -> tokens.IssuedToken:
    with platform.db.session(write=True) as session:
        principal = principals.get_by_id(session, principal_id)
        return tokens.issue(session, SYSTEM, principal, scopes=scopes, namespace=namespace)


def _introspect(platform: Platform, plaintext: str, caller: Caller = SYSTEM) -> dict[str, object]:
    with platform.db.session() as session:
        return tokens.introspect(session, caller, plaintext)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["invoke:churn"], ["invoke:churn"]),
        (["read", "invoke:churn", "invoke:churn"], ["invoke:churn", "read"]),
        (["invoke:a", "invoke:b-2", "invoke:" + "x" * 63], ["invoke:a", "invoke:b-2", "invoke:" + "x" * 63]),
    ],
)
def test_invoke_scopes_validate(given: list[str], expected: list[str]) -> None:
    assert validate_scopes(given) == expected


@pytest.mark.parametrize(
    "scope",
    ["invoke:", "invoke", "invoke:Churn", "invoke:-churn", "invoke:churn-", "invoke:a/b", "invoke:" + "x" * 64, "call:churn"],
)
def test_malformed_invoke_scopes_are_refused(scope: str) -> None:
    with pytest.raises(InvalidInput, match="invoke:<endpoint>"):
        validate_scopes(["read", scope])


def test_invoke_scopes_name_endpoints_and_give_no_api_actions() -> None:
    assert invoke_scopes(["read", "invoke:churn", "invoke:fraud"]) == ["churn", "fraud"]
    assert invoke_scopes(["read", "write"]) == []
    assert actions_for_scopes(["invoke:churn"]) == frozenset()
    assert actions_for_scopes(["invoke:churn", "read"]) == frozenset({Action.READ})


def test_an_invoke_scope_needs_a_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    user = _user(platform, "alice", {TEAM: "admin"})
    with pytest.raises(InvalidInput, match="pass that namespace too"):
        _issue(platform, user, ["invoke:churn"])
    issued = _issue(platform, user, ["invoke:churn"], namespace=TEAM)
    assert (issued.token.scopes, issued.token.namespace) == (["invoke:churn"], TEAM)


def test_a_service_account_token_takes_its_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, SYSTEM, TEAM, "scorer")
        issued = tokens.issue(session, SYSTEM, account, scopes=["invoke:churn"])
        assert issued.token.namespace == TEAM


def test_an_invoke_only_token_can_do_nothing_through_the_api(platform: Platform, teams: tuple[str, str]) -> None:
    user = _user(platform, "alice", {TEAM: "admin"})
    issued = _issue(platform, user, ["invoke:churn"], namespace=TEAM)
    with platform.db.session() as session:
        caller = tokens.authenticate(session, issued.plaintext)
    assert not any(caller.can(action, TEAM) for action in Action)
    with pytest.raises(NotVisible):
        caller.require(Action.READ, TEAM)


def test_a_user_may_make_an_invoke_token_from_a_read_token(platform: Platform, make_caller: MakeCaller) -> None:
    caller = make_caller({TEAM: "viewer"}, scopes=("read",))
    with platform.db.session(write=True) as session:
        me = principals.get_by_id(session, caller.principal_id)
        issued = tokens.issue(session, caller, me, scopes=["read", "invoke:churn"], namespace=TEAM)
        assert issued.token.scopes == ["invoke:churn", "read"]
        with pytest.raises(PermissionDenied, match="scopes its maker lacks"):
            tokens.issue(session, caller, me, scopes=["write", "invoke:churn"], namespace=TEAM)


def test_introspect_reports_what_an_active_token_may_do(platform: Platform, teams: tuple[str, str]) -> None:
    user = _user(platform, "alice", {TEAM: "editor", OTHER: "viewer"})
    issued = _issue(platform, user, ["read", "invoke:churn", "invoke:fraud"], namespace=TEAM)
    assert _introspect(platform, issued.plaintext) == {
        "active": True,
        "principal": "alice",
        "kind": "user",
        "roles": {TEAM: "editor", OTHER: "viewer"},
        "scopes": ["invoke:churn", "invoke:fraud", "read"],
        "token_namespace": TEAM,
        "expires_at": issued.token.expires_at,
    }


def test_introspect_names_a_service_account_as_sa(platform: Platform, teams: tuple[str, str]) -> None:
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, SYSTEM, TEAM, "scorer")
        issued = tokens.issue(session, SYSTEM, account, scopes=["invoke:churn"])
    found = _introspect(platform, issued.plaintext)
    assert (found["active"], found["principal"], found["kind"]) == (True, "sa:team-a/scorer", "service_account")
    assert (found["scopes"], found["token_namespace"]) == (["invoke:churn"], TEAM)


def test_introspect_of_unknown_revoked_expired_or_disabled_tokens_is_inactive(platform: Platform, teams: tuple[str, str]) -> None:
    user = _user(platform, "alice", {TEAM: "viewer"})
    revoked, expired, disabled = (_issue(platform, user, ["invoke:churn"], namespace=TEAM) for _ in range(3))
    assert _introspect(platform, "shp_not-a-real-token") == {
        "active": False,
        "reason": "token is not valid: check it was copied whole, or create a new one",
    }
    with platform.db.session(write=True) as session:
        tokens.revoke(session, SYSTEM, revoked.token.id)
        row = session.get(Token, expired.token.id)
        assert row is not None
        row.expires_at = now_ms() - 1
    found = _introspect(platform, revoked.plaintext)
    assert (found["active"], "revoked" in str(found["reason"])) == (False, True)
    assert set(found) == {"active", "reason"}
    found = _introspect(platform, expired.plaintext)
    assert (found["active"], "expired" in str(found["reason"])) == (False, True)

    assert _introspect(platform, disabled.plaintext)["active"] is True
    with platform.db.session(write=True) as session:
        principals.set_disabled(session, SYSTEM, principals.get_by_id(session, user), True)
    found = _introspect(platform, disabled.plaintext)
    assert (found["active"], "disabled" in str(found["reason"])) == (False, True)


def test_only_platform_admins_may_introspect(platform: Platform, make_caller: MakeCaller) -> None:
    user = _user(platform, "alice", {TEAM: "viewer"})
    issued = _issue(platform, user, ["read"])
    not_platform_admins: list[tuple[dict[str, str], tuple[str, ...], str]] = [
        ({TEAM: "admin"}, ("read", "write", "promote", "admin"), ""),
        ({"*": "platform-admin"}, ("read", "write", "promote"), ""),  # a token without the admin scope
        ({"*": "platform-admin"}, ("read", "write", "promote", "admin"), TEAM),  # a token limited to a namespace
    ]
    for roles, scopes, token_namespace in not_platform_admins:
        caller = make_caller(roles, scopes=scopes, token_namespace=token_namespace)
        with pytest.raises(PermissionDenied, match="only a platform admin may introspect tokens"):
            _introspect(platform, issued.plaintext, caller)
    admin = make_caller({"*": "platform-admin"})
    assert _introspect(platform, issued.plaintext, admin)["principal"] == "alice"
