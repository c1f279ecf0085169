"""``shipyard audit``."""

from __future__ import annotations

from .conftest import Invoke, as_json


def test_denials_are_listed_and_filtered(shipyard: Invoke) -> None:
    shipyard("user", "create", "dave")
    issued = as_json(shipyard("token", "create", "--user", "dave", "-o", "json"))
    shipyard("--token", issued["token"], "namespace", "create", "not-allowed", code=1)

    denied = as_json(shipyard("audit", "--outcome", "denied", "-o", "json"))
    assert denied
    assert {e["outcome"] for e in denied} == {"denied"}
    assert any(e["principal"] == "dave" for e in denied)

    by_admin = as_json(shipyard("audit", "--principal", "admin", "--limit", "2", "-o", "json"))
    assert len(by_admin) == 2
    assert {e["principal"] for e in by_admin} == {"admin"}
    assert "denied" in shipyard("audit", "--outcome", "denied").stdout
