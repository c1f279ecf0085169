"""Monitors over the REST API and the SDK: put, get, list, check now, history, delete; bad specs; RBAC and tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.runtime import Platform
from shipyard.store.models import now_ms
from tests.conftest import OTHER, TEAM, free_port
from tests.monitoring.traffic import Traffic, deploy, population, register
from tests.server.test_endpoints_api import bearer, refused

API = "/api/v1"
MONITOR = f"{API}/namespaces/{TEAM}/endpoints/churn/monitor"


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> Traffic:
    """Endpoint 'churn' in team-a serving v1 (with a reference), and 300 requests in the platform's prediction log."""
    version = register(platform, TEAM, "churn", population(5000, 1))
    revision = deploy(platform, TEAM, "churn", [{"model": "churn", "version": version}])
    traffic = Traffic(str(Path(platform.settings.resolved_home()) / "predictions"), TEAM, "churn", now=now_ms() - 60_000)
    traffic.send(population(600, 2), version=version, revision=revision)
    return traffic


def test_a_monitor_is_put_read_listed_checked_and_deleted(admin_api: TestClient, served: Traffic) -> None:
    body = {"features": ["age", "score"], "window": {"requests": 500}, "drift": {"methods": {"age": "ks"}}, "min_rows": 50}
    put = admin_api.put(MONITOR, json=body)
    assert put.status_code == 200, put.text
    monitor = put.json()
    assert (monitor["endpoint"], monitor["namespace"], monitor["enabled"]) == ("churn", TEAM, True)
    assert monitor["spec"]["window"] == {"requests": 500}
    assert monitor["spec"]["drift"] == {"method": "auto", "methods": {"age": "ks"}, "thresholds": {}}
    assert admin_api.get(MONITOR).json() == monitor
    assert [m["endpoint"] for m in admin_api.get(f"{API}/namespaces/{TEAM}/monitors").json()] == ["churn"]

    ran = admin_api.post(MONITOR + "/check")
    assert ran.status_code == 201, ran.text
    check = ran.json()
    assert (check["status"], check["endpoint"], check["rows"], check["drifted"]) == ("ok", "churn", 600, False)
    assert [row["feature"] for row in check["result"]["features"]] == ["age", "score"]
    assert check["result"]["measures"]["requests"] == 300.0
    assert any("SHIPYARD_MONITOR_GATEWAY_URL" in note for note in check["result"]["notes"])
    admin_api.post(MONITOR + "/check")
    history = admin_api.get(MONITOR + "/checks", params={"limit": 1}).json()
    assert [c["id"] for c in history] == [check["id"] + 1]
    assert admin_api.get(MONITOR).json()["last_checked_at"] == history[0]["created_at"]

    assert admin_api.delete(MONITOR).status_code == 204
    refused(admin_api.get(MONITOR), 404, "not_found", "has no monitor", "shipyard monitor set churn")
    refused(admin_api.get(MONITOR + "/checks"), 404, "not_found", "has no monitor")


def test_an_unreachable_gateway_is_noted_in_the_check(
    admin_api: TestClient, served: Traffic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_MONITOR_GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    assert admin_api.put(MONITOR, json={}).status_code == 200
    check = admin_api.post(MONITOR + "/check").json()
    assert not [m for m in check["result"]["measures"] if m.startswith("resource.")]
    assert any("the gateway's /metrics could not be read" in note for note in check["result"]["notes"])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"featurs": ["age"]}, 422, ("featurs", "extra")),
        ({"window": {"requests": 0}}, 400, ("window requests must be a whole number",)),
        ({"window": {}}, 400, ("needs requests",)),
        ({"drift": {"method": "t-test"}}, 400, ("drift method 't-test' is unknown", "jensenshannon")),
        ({"drift": {"methods": {"age": "chi"}}}, 400, ("'chi' for feature 'age' is unknown",)),
        ({"features": ["age", "height"]}, 400, ("['height'] are not in the reference profile", "expected some of age")),
        ({"drift": {"methods": {"age": "ks"}, "thresholds": {"age": 3}}}, 400, ("p-value", "(0, 1)")),
        ({"quality": {"unseen_share": 1.5}}, 400, ("unseen_share", "[0, 1)")),
        ({"min_rows": 0}, 400, ("min_rows",)),
        ({"features": "age"}, 422, ("features",)),
    ],
)
def test_bad_specs_get_a_4xx_that_says_what_to_send(
    admin_api: TestClient, served: Traffic, body: dict[str, object], status: int, words: tuple[str, ...]
) -> None:
    refused(admin_api.put(MONITOR, json=body), status, "invalid_input", *words)
    refused(admin_api.get(MONITOR), 404, "not_found")


def test_reading_needs_read_changing_and_checking_need_write(admin_api: TestClient, served: Traffic, platform: Platform) -> None:
    assert admin_api.put(MONITOR, json={}).status_code == 200
    viewer = bearer(platform, "vera", {TEAM: "viewer"})
    editor = bearer(platform, "eddie", {TEAM: "editor"})
    outsider = bearer(platform, "otto", {OTHER: "admin"})
    assert admin_api.get(MONITOR, headers=viewer).status_code == 200
    assert admin_api.get(MONITOR + "/checks", headers=viewer).status_code == 200
    refused(admin_api.put(MONITOR, json={}, headers=viewer), 403, "permission_denied", "may not write")
    refused(admin_api.post(MONITOR + "/check", headers=viewer), 403, "permission_denied")
    refused(admin_api.delete(MONITOR, headers=viewer), 403, "permission_denied")
    assert admin_api.post(MONITOR + "/check", headers=editor).status_code == 201
    assert admin_api.put(MONITOR, json={"min_rows": 10}, headers=editor).status_code == 200
    for response in (
        admin_api.get(MONITOR, headers=outsider),
        admin_api.get(MONITOR + "/checks", headers=outsider),
        admin_api.put(MONITOR, json={}, headers=outsider),
        admin_api.post(MONITOR + "/check", headers=outsider),
        admin_api.delete(MONITOR, headers=outsider),
        admin_api.get(f"{API}/namespaces/{TEAM}/monitors", headers=outsider),
    ):
        refused(response, 404, "not_found", TEAM)
    assert admin_api.get(MONITOR, headers={"Authorization": ""}).status_code == 401


def test_tenants_see_only_their_own_monitors(admin_api: TestClient, served: Traffic, platform: Platform) -> None:
    assert admin_api.put(MONITOR, json={}).status_code == 200
    version = register(platform, OTHER, "churn", population(100, 3))
    deploy(platform, OTHER, "churn", [{"model": "churn", "version": version}])
    theirs = f"{API}/namespaces/{OTHER}/endpoints/churn/monitor"
    assert admin_api.put(theirs, json={"min_rows": 7}).status_code == 200
    team_b = bearer(platform, "bea", {OTHER: "admin"})
    assert admin_api.get(theirs, headers=team_b).json()["spec"]["min_rows"] == 7
    assert [m["namespace"] for m in admin_api.get(f"{API}/namespaces/{OTHER}/monitors", headers=team_b).json()] == [OTHER]
    refused(admin_api.get(MONITOR, headers=team_b), 404, "not_found")


def test_the_sdk_speaks_monitors(client: Client, served: Traffic) -> None:
    created = client.put_monitor("churn", features=["age"], window={"requests": 200}, method="psi", min_rows=50, namespace=TEAM)
    assert created["spec"]["drift"]["method"] == "psi"
    assert client.get_monitor("churn", namespace=TEAM)["id"] == created["id"]
    assert [m["endpoint"] for m in client.list_monitors(namespace=TEAM)] == ["churn"]
    check = client.check_monitor("churn", namespace=TEAM)
    assert check["result"]["features"][0]["method"] == "psi"
    assert [c["id"] for c in client.monitor_checks("churn", namespace=TEAM)] == [check["id"]]
    with pytest.raises(InvalidInput, match="window requests"):
        client.put_monitor("churn", window={"requests": -1}, namespace=TEAM)
    client.delete_monitor("churn", namespace=TEAM)
    with pytest.raises(NotFound, match="has no monitor"):
        client.get_monitor("churn", namespace=TEAM)
