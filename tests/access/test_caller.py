from __future__ import annotations

import pytest

from shipyard.access import namespaces, principals, tokens
from shipyard.access.caller import SYSTEM, Caller
from shipyard.access.roles import ALL_NAMESPACES, Action, Role
from shipyard.errors import NotFound, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.store.models import Principal
from tests.conftest import OTHER, TEAM, MakeCaller

# What each namespace role may do, as the roles are documented: cumulative, admin does all.
ALLOWED = {
    Role.VIEWER: {Action.READ},
    Role.EDITOR: {Action.READ, Action.WRITE},
    Role.OPERATOR: {Action.READ, Action.WRITE, Action.PROMOTE},
    Role.ADMIN: set(Action),
}


def _caller(bindings: dict[str, Role], *, scopes: tuple[str, ...] = ("admin",), token_namespace: str = "") -> Caller:
    return Caller("p1", "someone", "user", bindings=bindings, scopes=frozenset(scopes), token_namespace=token_namespace)


@pytest.mark.parametrize("role", list(ALLOWED))
def test_role_action_matrix(role: Role) -> None:
    caller = _caller({TEAM: role})
    for action in Action:
        assert caller.can(action, TEAM) is (action in ALLOWED[role]), (role, action)
        assert not caller.can(action, OTHER)


def test_role_action_matrix_holds_for_authenticated_callers(make_caller: MakeCaller) -> None:
    for role, allowed in ALLOWED.items():
        caller = make_caller({TEAM: role.value})
        assert {a for a in Action if caller.can(a, TEAM)} == allowed
        assert not any(caller.can(a, OTHER) for a in Action)


def test_platform_admin_may_do_everything_everywhere() -> None:
    admin = _caller({ALL_NAMESPACES: Role.PLATFORM_ADMIN})
    assert admin.is_platform_admin
    assert all(admin.can(action, ns) for action in Action for ns in (TEAM, OTHER, "anything"))
    assert admin.visible_namespaces() is None
    admin.require_platform_admin("test")


def test_the_system_caller_is_a_platform_admin() -> None:
    system = Caller.system()
    assert system.name == SYSTEM
    assert system.is_platform_admin
    assert system.visible_namespaces() is None


def test_a_platform_admin_token_without_admin_scope_is_not_platform_admin() -> None:
    weak = _caller({ALL_NAMESPACES: Role.PLATFORM_ADMIN}, scopes=("read", "write"))
    assert not weak.is_platform_admin
    assert weak.can(Action.WRITE, TEAM)
    assert not weak.can(Action.ADMIN, TEAM)
    with pytest.raises(PermissionDenied, match="platform admin"):
        weak.require_platform_admin("create users")


def test_a_token_limited_to_a_namespace_sees_only_that_namespace(make_caller: MakeCaller) -> None:
    caller = make_caller({TEAM: "editor", OTHER: "editor"}, token_namespace=TEAM)
    assert caller.can(Action.WRITE, TEAM)
    assert not caller.can(Action.READ, OTHER)
    assert caller.visible_namespaces() == [TEAM]
    with pytest.raises(NotVisible):
        caller.require(Action.READ, OTHER)


def test_a_token_limited_to_a_namespace_without_a_role_there_sees_nothing(make_caller: MakeCaller) -> None:
    caller = make_caller({TEAM: "admin"}, token_namespace=OTHER)
    assert caller.visible_namespaces() == []
    assert not caller.can(Action.READ, TEAM)


def test_a_platform_admin_token_limited_to_a_namespace_acts_only_there(platform: Platform, admin_token: str) -> None:
    with platform.db.session(write=True) as session:
        admin = tokens.authenticate(session, admin_token)
        namespaces.create(session, admin, TEAM)
        namespaces.create(session, admin, OTHER)
        principal = session.get_one(Principal, admin.principal_id)
        issued = tokens.issue(session, admin, principal, scopes=["admin"], namespace=TEAM)
    with platform.db.session() as session:
        limited = tokens.authenticate(session, issued.plaintext)
        assert limited.visible_namespaces() == [TEAM]
        assert [n.name for n in namespaces.list_visible(session, limited)] == [TEAM]
        assert not limited.is_platform_admin
        assert limited.can(Action.ADMIN, TEAM)
        with pytest.raises(NotVisible):
            namespaces.get(session, limited, OTHER)
        with pytest.raises(PermissionDenied):
            principals.list_users(session, limited)


def test_visible_namespaces_lists_readable_bindings_sorted() -> None:
    caller = _caller({"zeta": Role.VIEWER, "alpha": Role.EDITOR, TEAM: Role.ADMIN})
    assert caller.visible_namespaces() == sorted(["zeta", "alpha", TEAM])
    assert _caller({}).visible_namespaces() == []


def test_require_hides_namespaces_from_outsiders() -> None:
    outsider = _caller({OTHER: Role.ADMIN})
    with pytest.raises(NotVisible, match="does not exist or you are not a member") as raised:
        outsider.require(Action.READ, TEAM)
    assert isinstance(raised.value, NotFound)
    assert raised.value.access_denied


def test_require_tells_members_what_they_lack() -> None:
    viewer = _caller({TEAM: Role.VIEWER})
    viewer.require(Action.READ, TEAM)
    with pytest.raises(PermissionDenied) as raised:
        viewer.require(Action.WRITE, TEAM)
    message = str(raised.value)
    assert "viewer" in message
    assert "write" in message
    assert TEAM in message


def test_require_with_a_narrow_scope_is_permission_denied_not_hidden() -> None:
    reader = _caller({TEAM: Role.ADMIN}, scopes=("read",))
    with pytest.raises(PermissionDenied, match="scopes"):
        reader.require(Action.PROMOTE, TEAM)
