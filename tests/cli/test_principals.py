"""``shipyard user`` and ``shipyard service-account``."""

from __future__ import annotations

from .conftest import Invoke, as_json


def test_users_can_be_created_listed_disabled_and_enabled(shipyard: Invoke) -> None:
    alice = as_json(shipyard("user", "create", "alice", "--display-name", "Alice A", "-o", "json"))
    assert (alice["name"], alice["display_name"], alice["disabled"]) == ("alice", "Alice A", False)
    assert "Alice A" in shipyard("user", "list").stdout

    assert as_json(shipyard("user", "disable", "alice", "-o", "json"))["disabled"] is True
    listed = {u["name"]: u for u in as_json(shipyard("user", "list", "-o", "json"))}
    assert listed["alice"]["disabled"] is True
    assert as_json(shipyard("user", "enable", "alice", "-o", "json"))["disabled"] is False


def test_disabling_an_unknown_user_exits_1(shipyard: Invoke) -> None:
    result = shipyard("user", "disable", "nobody", code=1)
    assert "nobody" in result.stderr


def test_service_accounts_live_in_a_namespace(shipyard: Invoke) -> None:
    shipyard("namespace", "create", "team-a")
    created = as_json(shipyard("service-account", "create", "trainer", "-n", "team-a", "-o", "json"))
    assert (created["name"], created["namespace"], created["kind"]) == ("trainer", "team-a", "service_account")

    assert [a["name"] for a in as_json(shipyard("service-account", "list", "-n", "team-a", "-o", "json"))] == ["trainer"]
    assert as_json(shipyard("service-account", "list", "-n", "default", "-o", "json")) == []
    assert "trainer" in shipyard("service-account", "list", "--namespace", "team-a").stdout
