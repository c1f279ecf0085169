"""Alert rules over the REST API and the SDK: CRUD, state and history, bad rules, RBAC, tenants, private webhooks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from shipyard.access.caller import Caller
from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import alerts
from shipyard.runtime import Platform
from tests.conftest import OTHER, TEAM
from tests.monitoring.traffic import deploy, population, register
from tests.server.test_endpoints_api import bearer, refused

API = "/api/v1"
RULES = f"{API}/namespaces/{TEAM}/alert-rules"
HOOK = "https://hooks.example.com/services/T00/B00/secret"
RULE = {"endpoint": "churn", "measure": "drift.count", "operator": ">=", "threshold": 1, "for_seconds": 60, "webhook": HOOK}


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> str:
    version = register(platform, TEAM, "churn", population(50, 1))
    deploy(platform, TEAM, "churn", [{"model": "churn", "version": version}])
    return "churn"


def fire(platform: Platform, name: str, namespace: str = TEAM) -> None:
    """What the monitor loop does when a check shows drift."""
    with platform.db.session(write=True) as session:
        rule = alerts.get(session, Caller.system(), namespace, name)
        alerts.evaluate(session, rule, {"drift.count": 2.0, "drift.feature:age": 1.0}, 1_800_000_000_000)
        alerts.evaluate(session, rule, {"drift.count": 2.0, "drift.feature:age": 1.0}, 1_800_000_060_000)


def test_rules_are_put_read_listed_and_deleted_with_their_state_and_history(
    admin_api: TestClient, served: str, platform: Platform
) -> None:
    put = admin_api.put(f"{RULES}/churn-drift", json=RULE)
    assert put.status_code == 200, put.text
    rule = put.json()
    assert {k: rule[k] for k in ("name", "endpoint", "measure", "operator", "threshold", "for_seconds", "webhook")} == {
        "name": "churn-drift", **RULE, "threshold": 1.0, "for_seconds": 60.0,
    }  # fmt: skip
    assert (rule["state"], rule["enabled"], rule["last_value"]) == ("inactive", True, None)
    assert admin_api.get(f"{RULES}/churn-drift").json() == rule
    admin_api.put(f"{RULES}/a-slow", json={"endpoint": "churn", "measure": "latency.p99_ms", "operator": ">", "threshold": 250})
    assert [r["name"] for r in admin_api.get(RULES).json()] == ["a-slow", "churn-drift"]

    fire(platform, "churn-drift")
    history = admin_api.get(f"{RULES}/churn-drift/history").json()
    assert [(t["from_state"], t["to_state"], t["rule"]) for t in history] == [
        ("pending", "firing", "churn-drift"), ("inactive", "pending", "churn-drift"),
    ]  # fmt: skip
    assert history[0]["detail"]["drifted_features"] == ["age"]
    assert history[0]["value"] == 2.0
    assert len(admin_api.get(f"{RULES}/churn-drift/history", params={"limit": 1}).json()) == 1
    overview = admin_api.get(f"{API}/namespaces/{TEAM}/alerts").json()
    assert {r["name"]: r["state"] for r in overview["rules"]} == {"a-slow": "inactive", "churn-drift": "firing"}
    assert [t["to_state"] for t in overview["transitions"]] == ["firing", "pending"]

    assert admin_api.delete(f"{RULES}/churn-drift").status_code == 204
    refused(admin_api.get(f"{RULES}/churn-drift"), 404, "not_found", "alert rule 'churn-drift' does not exist")
    assert admin_api.get(f"{API}/namespaces/{TEAM}/alerts").json()["transitions"] == []


@pytest.mark.parametrize(
    ("name", "change", "status", "words"),
    [
        ("churn-drift", {"operator": "=="}, 400, ("operator '==' is unknown", ">=")),
        ("churn-drift", {"measure": "drift.total"}, 400, ("measure 'drift.total' is unknown", "drift.feature:<feature>")),
        ("churn-drift", {"webhook": "not a url"}, 400, ("http:// or https://",)),
        ("churn-drift", {"for_seconds": -5}, 400, ("for_seconds",)),
        ("churn-drift", {"endpoint": "nope"}, 404, ("endpoint 'nope' does not exist",)),
        ("churn-drift", {"severity": "page"}, 422, ("severity",)),
        ("Churn_Drift", {}, 400, ("alert rule name", "lowercase")),
    ],
)
def test_bad_rules_get_a_4xx_that_says_what_to_send(
    admin_api: TestClient, served: str, name: str, change: dict[str, object], status: int, words: tuple[str, ...]
) -> None:
    code = {400: "invalid_input", 404: "not_found", 422: "invalid_input"}[status]
    refused(admin_api.put(f"{RULES}/{name}", json={**RULE, **change}), status, code, *words)
    assert admin_api.get(RULES).json() == []


def test_reading_needs_read_changing_needs_write_and_webhooks_stay_private(
    admin_api: TestClient, served: str, platform: Platform
) -> None:
    assert admin_api.put(f"{RULES}/churn-drift", json=RULE).status_code == 200
    viewer = bearer(platform, "vera", {TEAM: "viewer"})
    editor = bearer(platform, "eddie", {TEAM: "editor"})
    outsider = bearer(platform, "otto", {OTHER: "admin"})
    assert admin_api.get(f"{RULES}/churn-drift", headers=viewer).json()["webhook"] == "https://hooks.example.com/..."
    assert admin_api.get(RULES, headers=viewer).json()[0]["webhook"] == "https://hooks.example.com/..."
    assert admin_api.get(f"{API}/namespaces/{TEAM}/alerts", headers=viewer).json()["rules"][0]["webhook"].endswith("/...")
    assert admin_api.get(f"{RULES}/churn-drift", headers=editor).json()["webhook"] == HOOK
    refused(admin_api.put(f"{RULES}/mine", json=RULE, headers=viewer), 403, "permission_denied", "may not write")
    refused(admin_api.delete(f"{RULES}/churn-drift", headers=viewer), 403, "permission_denied")
    assert admin_api.put(f"{RULES}/mine", json=RULE, headers=editor).status_code == 200
    for response in (
        admin_api.get(RULES, headers=outsider),
        admin_api.get(f"{RULES}/churn-drift", headers=outsider),
        admin_api.get(f"{RULES}/churn-drift/history", headers=outsider),
        admin_api.get(f"{API}/namespaces/{TEAM}/alerts", headers=outsider),
        admin_api.put(f"{RULES}/theirs", json=RULE, headers=outsider),
        admin_api.delete(f"{RULES}/churn-drift", headers=outsider),
    ):
        refused(response, 404, "not_found", TEAM)


def test_tenants_see_only_their_own_rules(admin_api: TestClient, served: str, platform: Platform) -> None:
    assert admin_api.put(f"{RULES}/churn-drift", json=RULE).status_code == 200
    version = register(platform, OTHER, "churn", population(50, 2))
    deploy(platform, OTHER, "churn", [{"model": "churn", "version": version}])
    theirs = f"{API}/namespaces/{OTHER}/alert-rules"
    assert admin_api.put(f"{theirs}/churn-drift", json={**RULE, "threshold": 3}).status_code == 200, "names are per namespace"
    team_b = bearer(platform, "bea", {OTHER: "admin"})
    assert [r["threshold"] for r in admin_api.get(theirs, headers=team_b).json()] == [3.0]
    fire(platform, "churn-drift")
    assert admin_api.get(f"{API}/namespaces/{OTHER}/alerts", headers=team_b).json()["transitions"] == []
    refused(admin_api.get(f"{RULES}/churn-drift/history", headers=team_b), 404, "not_found")
    refused(admin_api.put(f"{theirs}/cross", json={**RULE, "endpoint": "nope"}, headers=team_b), 404, "not_found")


def test_the_sdk_speaks_alert_rules(client: Client, served: str, platform: Platform) -> None:
    made = client.put_alert_rule(
        "churn-drift", endpoint="churn", measure="drift.feature:age", operator=">=", threshold=1, for_seconds=0, namespace=TEAM
    )
    assert (made["measure"], made["state"], made["webhook"]) == ("drift.feature:age", "inactive", None)
    assert client.get_alert_rule("churn-drift", namespace=TEAM)["id"] == made["id"]
    assert [r["name"] for r in client.list_alert_rules(namespace=TEAM)] == ["churn-drift"]
    with platform.db.session(write=True) as session:
        rule = alerts.get(session, Caller.system(), TEAM, "churn-drift")
        alerts.evaluate(session, rule, {"drift.feature:age": 1.0}, 1_800_000_000_000)
    assert [t["to_state"] for t in client.alert_history("churn-drift", namespace=TEAM)] == ["firing"]
    assert client.alerts(namespace=TEAM)["rules"][0]["state"] == "firing"
    with pytest.raises(InvalidInput, match="operator"):
        client.put_alert_rule("x", endpoint="churn", measure="drift.count", operator="=", threshold=1, namespace=TEAM)
    client.delete_alert_rule("churn-drift", namespace=TEAM)
    with pytest.raises(NotFound):
        client.get_alert_rule("churn-drift", namespace=TEAM)
