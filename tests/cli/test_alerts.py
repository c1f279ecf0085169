"""``shipyard alerts`` and ``shipyard alert create|show|history|delete``."""

from __future__ import annotations

import pytest
import typer

from shipyard.access.caller import Caller
from shipyard.cli.alerts import parse_duration, parse_when
from shipyard.monitoring import alerts
from shipyard.runtime import Platform
from tests.monitoring.traffic import deploy, population, register

from .conftest import Invoke, as_json

NS = "default"


@pytest.fixture
def served(platform: Platform) -> str:
    version = register(platform, NS, "churn", population(50, 1))
    deploy(platform, NS, "churn", [{"model": "churn", "version": version}])
    return "churn"


def test_rules_are_created_listed_shown_and_deleted(shipyard: Invoke, served: str, platform: Platform) -> None:
    made = as_json(
        shipyard("alert", "create", "churn-drift", "--endpoint", "churn", "--when", "drift.feature:age >= 1", "--for", "5m",
                 "--webhook", "https://hooks.example.com/x", "-o", "json")
    )  # fmt: skip
    assert (made["measure"], made["operator"], made["threshold"], made["for_seconds"]) == ("drift.feature:age", ">=", 1.0, 300.0)
    assert made["webhook"] == "https://hooks.example.com/x"
    assert "error_rate > 0.05" in shipyard("alert", "create", "errors", "-e", "churn", "--when", "error_rate>0.05").stdout
    listed = shipyard("alerts").stdout
    assert "churn-drift" in listed
    assert "drift.feature:age >= 1" in listed
    assert "inactive" in listed
    assert "https://hooks.example.com/x" in shipyard("alert", "show", "churn-drift").stdout
    assert "has not changed state yet" in shipyard("alert", "history", "churn-drift").stdout

    with platform.db.session(write=True) as session:
        rule = alerts.get(session, Caller.system(), NS, "errors")
        alerts.evaluate(session, rule, {"error_rate": 0.5}, 1_800_000_000_000)
    overview = as_json(shipyard("alerts", "-o", "json"))
    assert {r["name"]: r["state"] for r in overview["rules"]} == {"churn-drift": "inactive", "errors": "firing"}
    assert "firing" in shipyard("alerts").stdout
    assert "Recent transitions" in shipyard("alerts").stdout
    history = as_json(shipyard("alert", "history", "errors", "-o", "json"))
    assert [(t["from_state"], t["to_state"], t["value"]) for t in history] == [("inactive", "firing", 0.5)]
    assert "firing" in shipyard("alert", "history", "errors").stdout

    assert "Deleted alert rule errors" in shipyard("alert", "delete", "errors").stdout
    assert "does not exist" in shipyard("alert", "show", "errors", code=1).stderr


def test_bad_rules_are_refused_with_what_to_do(shipyard: Invoke, served: str) -> None:
    assert "MEASURE OP NUMBER" in shipyard("alert", "create", "x", "-e", "churn", "--when", "drift.count is high", code=2).output
    assert (
        "not a duration"
        in shipyard("alert", "create", "x", "-e", "churn", "--when", "drift.count >= 1", "--for", "soon", code=2).output
    )
    unknown = shipyard("alert", "create", "x", "-e", "churn", "--when", "drift.total >= 1", code=1).stderr
    assert "measure 'drift.total' is unknown" in unknown
    assert "does not exist" in shipyard("alert", "create", "x", "-e", "nope", "--when", "drift.count >= 1", code=1).stderr
    assert as_json(shipyard("alerts", "-o", "json"))["rules"] == []


def test_conditions_and_durations_are_parsed() -> None:
    assert parse_when("drift.count >= 1") == ("drift.count", ">=", 1.0)
    assert parse_when("latency.p99_ms>250.5") == ("latency.p99_ms", ">", 250.5)
    assert parse_when(" drift.score:mean radius <= 0.2 ") == ("drift.score:mean radius", "<=", 0.2)
    assert parse_when("requests < 1") == ("requests", "<", 1.0)
    assert [parse_duration(t) for t in ("90", "90s", "5m", "1.5h", "1d")] == [90.0, 90.0, 300.0, 5400.0, 86400.0]
    with pytest.raises(typer.BadParameter, match="is not a number"):
        parse_when("drift.count >= many")
