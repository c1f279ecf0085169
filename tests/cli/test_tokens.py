"""``shipyard token``: the secret is shown once, and a revoked token stops working."""

from __future__ import annotations

from .conftest import Invoke, as_json


def test_a_user_token_is_printed_once_with_a_warning_and_works(shipyard: Invoke) -> None:
    shipyard("user", "create", "bob")
    result = shipyard("token", "create", "--user", "bob", "--scope", "read", "--days", "7", "--name", "laptop")
    assert "not shown again" in result.stdout
    secret = next(line.strip() for line in result.stdout.splitlines() if line.startswith("shp_"))

    me = as_json(shipyard("--token", secret, "whoami", "-o", "json"))
    assert (me["name"], me["scopes"]) == ("bob", ["read"])

    listed = as_json(shipyard("token", "list", "--user", "bob", "-o", "json"))
    assert [t["name"] for t in listed] == ["laptop"]
    assert all("token" not in t for t in listed)


def test_json_output_includes_the_secret_and_revoke_ends_it(shipyard: Invoke) -> None:
    shipyard("namespace", "create", "team-a")
    shipyard("service-account", "create", "trainer", "-n", "team-a")
    issued = as_json(shipyard("token", "create", "--service-account", "trainer", "-n", "team-a", "-o", "json"))
    assert issued["token"]
    assert issued["namespace"] == "team-a"
    assert issued["scopes"] == ["read", "write"]

    listed = as_json(shipyard("token", "list", "--service-account", "trainer", "-n", "team-a", "-o", "json"))
    assert [t["id"] for t in listed] == [issued["id"]]

    revoked = as_json(shipyard("token", "revoke", issued["id"], "-o", "json"))
    assert revoked["revoked_at"] is not None
    shipyard("--token", issued["token"], "whoami", code=1)


def test_user_and_service_account_together_is_a_usage_error(shipyard: Invoke) -> None:
    result = shipyard("token", "create", "--user", "bob", "--service-account", "trainer", code=2)
    assert "not both" in result.output
