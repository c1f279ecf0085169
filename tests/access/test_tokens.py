from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from sqlalchemy import select

from shipyard.access import principals, tokens
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, NotFound, NotVisible, PermissionDenied, Unauthenticated
from shipyard.runtime import Platform
from shipyard.store.models import Principal, Token, now_ms
from tests.conftest import TEAM, MakeCaller


def _user(platform: Platform, name: str = "alice") -> str:
    with platform.db.session(write=True) as session:
        return principals.create_user(session, Caller.system(), name).id


def _issue(platform: Platform, principal_id: str, caller: Caller | None = None, **options: Any) -> tokens.IssuedToken:
    with platform.db.session(write=True) as session:
        principal = session.get(Principal, principal_id)
        assert principal is not None
        return tokens.issue(session, caller or Caller.system(), principal, **options)


def _authenticate(platform: Platform, plaintext: str | None) -> Caller:
    with platform.db.session(write=True) as session:
        return tokens.authenticate(session, plaintext)


def test_issue_returns_the_plaintext_once_and_stores_only_its_hash(platform: Platform) -> None:
    issued = _issue(platform, _user(platform), name="laptop")
    with platform.db.session() as session:
        row = session.get(Token, issued.token.id)
        assert row is not None
        stored = [getattr(row, column.key) for column in Token.__table__.columns]
    assert row.token_hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.plaintext not in [str(value) for value in stored]
    assert issued.plaintext.startswith(row.prefix)
    assert len(row.prefix) < len(issued.plaintext) // 2


def test_tokens_carry_at_least_32_random_bytes(platform: Platform) -> None:
    user = _user(platform)
    plaintexts = {_issue(platform, user).plaintext for _ in range(5)}
    assert len(plaintexts) == 5
    for plaintext in plaintexts:
        body = plaintext.removeprefix(tokens.TOKEN_PREFIX)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) >= 32


def test_authenticate_builds_the_caller_from_token_and_bindings(platform: Platform, make_caller: MakeCaller) -> None:
    caller = make_caller({TEAM: "editor"}, scopes=["read", "write"])
    assert caller.kind == "user"
    assert caller.name.startswith("user-")
    assert dict(caller.bindings) == {TEAM: "editor"}
    assert caller.scopes == frozenset({"read", "write"})


def test_missing_or_unknown_tokens_are_unauthenticated(platform: Platform) -> None:
    for plaintext in (None, "", "shp_not-a-real-token"):
        with pytest.raises(Unauthenticated, match="token"):
            _authenticate(platform, plaintext)


def test_default_lifetime_and_scopes(platform: Platform) -> None:
    before = now_ms()
    issued = _issue(platform, _user(platform), days=3)
    assert issued.token.scopes == ["read", "write"]
    assert issued.token.expires_at is not None
    assert before + 3 * tokens.DAY_MS <= issued.token.expires_at <= now_ms() + 3 * tokens.DAY_MS


def test_expired_tokens_are_refused(platform: Platform) -> None:
    issued = _issue(platform, _user(platform), days=1)
    _authenticate(platform, issued.plaintext)
    with platform.db.session(write=True) as session:
        row = session.get(Token, issued.token.id)
        assert row is not None
        row.expires_at = now_ms() - 1
    with pytest.raises(Unauthenticated, match="expired"):
        _authenticate(platform, issued.plaintext)


def test_lifetime_out_of_range_is_invalid(platform: Platform) -> None:
    user = _user(platform)
    for days in (0, -1, tokens.MAX_TOKEN_DAYS + 1):
        with pytest.raises(InvalidInput, match="lifetime"):
            _issue(platform, user, days=days)


def test_revoked_tokens_are_refused_and_revoking_again_keeps_the_time(platform: Platform) -> None:
    issued = _issue(platform, _user(platform))
    with platform.db.session(write=True) as session:
        first = tokens.revoke(session, Caller.system(), issued.token.id).revoked_at
    assert first is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        _authenticate(platform, issued.plaintext)
    with platform.db.session(write=True) as session:
        assert tokens.revoke(session, Caller.system(), issued.token.id).revoked_at == first


def test_users_revoke_their_own_tokens(platform: Platform) -> None:
    user = _user(platform)
    issued = _issue(platform, user, scopes=["read"])
    other = _issue(platform, user, scopes=["read"])
    caller = _authenticate(platform, issued.plaintext)
    with platform.db.session(write=True) as session:
        tokens.revoke(session, caller, other.token.id)
    with pytest.raises(Unauthenticated):
        _authenticate(platform, other.plaintext)


def test_revoking_an_unknown_token_is_not_found(platform: Platform) -> None:
    with platform.db.session(write=True) as session, pytest.raises(NotFound):
        tokens.revoke(session, Caller.system(), "0" * 32)


def test_scopes_narrow_what_a_token_may_do(platform: Platform, make_caller: MakeCaller) -> None:
    reader = make_caller({TEAM: "admin"}, scopes=["read"])
    assert reader.can(Action.READ, TEAM)
    assert not reader.can(Action.WRITE, TEAM)
    with pytest.raises(PermissionDenied, match="scopes"):
        reader.require(Action.WRITE, TEAM)
    promoter = make_caller({TEAM: "admin"}, scopes=["promote"])
    assert promoter.can(Action.PROMOTE, TEAM)
    assert not promoter.can(Action.WRITE, TEAM)
    assert not promoter.can(Action.ADMIN, TEAM)


def test_scopes_never_widen_a_role(make_caller: MakeCaller) -> None:
    viewer = make_caller({TEAM: "viewer"}, scopes=["admin"])
    assert viewer.can(Action.READ, TEAM)
    assert not viewer.can(Action.WRITE, TEAM)


def test_unknown_scopes_are_invalid(platform: Platform) -> None:
    with pytest.raises(InvalidInput, match="unknown"):
        _issue(platform, _user(platform), scopes=["read", "root"])


def test_a_token_cannot_mint_a_token_with_scopes_it_lacks(platform: Platform) -> None:
    user = _user(platform)
    caller = _authenticate(platform, _issue(platform, user, scopes=["write"]).plaintext)
    with pytest.raises(PermissionDenied, match="lacks"):
        _issue(platform, user, caller, scopes=["promote"])
    assert _issue(platform, user, caller, scopes=["write"]).token.scopes == ["write"]


def test_a_namespace_limited_token_cannot_mint_an_unlimited_one(platform: Platform, make_caller: MakeCaller) -> None:
    limited = make_caller({TEAM: "editor"}, token_namespace=TEAM)
    with pytest.raises(PermissionDenied, match=TEAM):
        _issue(platform, limited.principal_id, limited, scopes=["read"])
    same = _issue(platform, limited.principal_id, limited, scopes=["read"], namespace=TEAM)
    assert same.token.namespace == TEAM


def test_disabled_principals_cannot_authenticate_or_get_tokens(platform: Platform) -> None:
    user = _user(platform)
    issued = _issue(platform, user)
    with platform.db.session(write=True) as session:
        principal = session.get(Principal, user)
        assert principal is not None
        principals.set_disabled(session, Caller.system(), principal, True)
    with pytest.raises(Unauthenticated, match="disabled"):
        _authenticate(platform, issued.plaintext)
    with pytest.raises(InvalidInput, match="disabled"):
        _issue(platform, user)


def test_service_account_tokens_are_limited_to_its_namespace(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    with platform.db.session(write=True) as session:
        account = principals.create_service_account(session, admin, TEAM, "trainer")
        issued = tokens.issue(session, admin, account, scopes=["write"], namespace="")
    assert issued.token.namespace == TEAM
    caller = _authenticate(platform, issued.plaintext)
    assert caller.name == f"sa:{TEAM}/trainer"
    assert caller.kind == "service_account"


def test_only_owners_and_admins_manage_tokens(platform: Platform, make_caller: MakeCaller) -> None:
    editor = make_caller({TEAM: "editor"})
    other_user = _user(platform, "bob")
    with pytest.raises(PermissionDenied, match="may not manage"):
        _issue(platform, other_user, editor)
    bobs = _issue(platform, other_user)
    with platform.db.session(write=True) as session, pytest.raises(NotFound):
        tokens.revoke(session, editor, bobs.token.id)


def test_a_platform_admin_without_the_admin_scope_cannot_manage_others(platform: Platform, admin_token: str) -> None:
    with platform.db.session(write=True) as session:
        admin = tokens.authenticate(session, admin_token)
        weak = tokens.issue(session, admin, session.get_one(Principal, admin.principal_id), scopes=["read", "write"])
    weak_caller = _authenticate(platform, weak.plaintext)
    with pytest.raises(PermissionDenied, match="'admin' scope"):
        _issue(platform, _user(platform), weak_caller)


def test_namespace_admins_manage_their_service_accounts_only(platform: Platform, make_caller: MakeCaller) -> None:
    admin = make_caller({TEAM: "admin"})
    with platform.db.session(write=True) as session:
        other = principals.create_service_account(session, Caller.system(), "team-b", "etl")
    with pytest.raises(PermissionDenied):
        _issue(platform, other.id, admin)
    with platform.db.session(write=True) as session, pytest.raises(NotVisible):
        principals.create_service_account(session, admin, "team-b", "sneaky")


def test_touch_records_last_use_and_list_shows_the_tokens(platform: Platform) -> None:
    user = _user(platform)
    first = _issue(platform, user, name="one")
    _issue(platform, user, name="two")
    with platform.db.session(write=True) as session:
        caller = tokens.authenticate(session, first.plaintext)
        tokens.touch(session, caller.token_id, now_ms())
        tokens.touch(session, caller.token_id, now_ms() + 1000)  # within the interval: no second write
    with platform.db.session() as session:
        listed = tokens.list_for(session, Caller.system(), session.get_one(Principal, user))
        assert sorted(t.name for t in listed) == ["one", "two"]
        used = session.scalar(select(Token.last_used_at).where(Token.id == first.token.id))
    assert used is not None
    assert first.token.created_at <= used < first.token.created_at + 60_000
