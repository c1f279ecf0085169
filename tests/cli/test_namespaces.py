"""``shipyard namespace``."""

from __future__ import annotations

from .conftest import Invoke, as_json


def test_create_list_get_delete(shipyard: Invoke) -> None:
    created = as_json(shipyard("namespace", "create", "team-a", "--description", "the A team", "-o", "json"))
    assert (created["name"], created["description"]) == ("team-a", "the A team")

    names = [n["name"] for n in as_json(shipyard("namespace", "list", "-o", "json"))]
    assert "team-a" in names
    assert "team-a" in shipyard("namespace", "list").stdout
    assert "the A team" in shipyard("namespace", "get", "team-a").stdout

    assert "Deleted namespace team-a" in shipyard("namespace", "delete", "team-a").stdout
    result = shipyard("namespace", "get", "team-a", code=1)
    assert "team-a" in result.stderr

    shipyard("namespace", "create", "team-c")
    assert as_json(shipyard("namespace", "delete", "team-c", "-o", "json")) == {"deleted": "team-c"}


def test_creating_a_namespace_twice_exits_1(shipyard: Invoke) -> None:
    shipyard("namespace", "create", "team-b")
    result = shipyard("namespace", "create", "team-b", code=1)
    assert "team-b" in result.stderr
