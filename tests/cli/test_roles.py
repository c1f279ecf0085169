"""``shipyard role``."""

from __future__ import annotations

from .conftest import Invoke, as_json


def test_grant_list_and_revoke(shipyard: Invoke) -> None:
    shipyard("namespace", "create", "team-a")
    shipyard("user", "create", "carol")
    shipyard("service-account", "create", "trainer", "-n", "team-a")

    granted = as_json(shipyard("role", "grant", "editor", "--user", "carol", "-n", "team-a", "-o", "json"))
    assert (granted["principal"], granted["role"], granted["namespace"]) == ("carol", "editor", "team-a")
    shipyard("role", "grant", "viewer", "--service-account", "trainer", "-n", "team-a")

    members = {b["principal"]: b["role"] for b in as_json(shipyard("role", "list", "-n", "team-a", "-o", "json"))}
    assert members == {"carol": "editor", "sa:team-a/trainer": "viewer"}

    assert "Removed the role of carol" in shipyard("role", "revoke", "--user", "carol", "-n", "team-a").stdout
    remaining = {b["principal"] for b in as_json(shipyard("role", "list", "-n", "team-a", "-o", "json"))}
    assert remaining == {"sa:team-a/trainer"}

    revoked = as_json(shipyard("role", "revoke", "--service-account", "trainer", "-n", "team-a", "-o", "json"))
    assert (revoked["service_account"], revoked["removed"]) == ("trainer", True)
    assert as_json(shipyard("role", "list", "-n", "team-a", "-o", "json")) == []


def test_star_lists_platform_admins(shipyard: Invoke) -> None:
    admins = as_json(shipyard("role", "list", "-n", "*", "-o", "json"))
    assert [(b["principal"], b["role"]) for b in admins] == [("admin", "platform-admin")]


def test_an_unknown_role_or_a_missing_principal_is_a_usage_error(shipyard: Invoke) -> None:
    shipyard("role", "grant", "overlord", "--user", "carol", code=2)
    assert "--user" in shipyard("role", "grant", "viewer", code=2).output
