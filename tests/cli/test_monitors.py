"""``shipyard monitor``: set, show, check, run (one check, or the loop), history, list, delete."""

from __future__ import annotations

import pytest
import typer

from shipyard.cli.monitors import parse_overrides, parse_thresholds, split_features
from shipyard.runtime import Platform
from shipyard.store.models import now_ms
from tests.monitoring.traffic import Traffic, deploy, population, register

from .conftest import Invoke, as_json

NS = "default"


@pytest.fixture
def served(platform: Platform) -> Traffic:
    """Endpoint 'churn' in the default namespace serving v1 with a reference; 600 rows in the platform's log."""
    version = register(platform, NS, "churn", population(5000, 1))
    revision = deploy(platform, NS, "churn", [{"model": "churn", "version": version}])
    traffic = Traffic(str(platform.settings.resolved_home() / "predictions"), NS, "churn", now=now_ms() - 60_000)
    shifted = population(600, 2)
    shifted["income"] *= 3
    traffic.send(shifted, version=version, revision=revision)
    return traffic


def test_a_monitor_is_set_shown_checked_and_deleted(shipyard: Invoke, served: Traffic) -> None:
    made = as_json(
        shipyard("monitor", "set", "churn", "--features", "age,income", "--features", "score", "--window-requests", "500",
                 "--window-seconds", "86400", "--method", "age=ks", "--threshold", "income=0.2", "--no-prediction-drift",
                 "--min-rows", "50", "--interval", "60", "-o", "json")
    )  # fmt: skip
    spec = made["spec"]
    assert spec["features"] == ["age", "income", "score"]
    assert spec["window"] == {"requests": 500, "seconds": 86400.0}
    assert spec["drift"] == {"method": "auto", "methods": {"age": "ks"}, "thresholds": {"income": 0.2}}
    assert (spec["prediction_drift"], spec["min_rows"], spec["interval_seconds"]) == (False, 50, 60.0)
    assert "No checks yet" in shipyard("monitor", "show", "churn").stdout

    table = shipyard("monitor", "check", "churn").stdout
    assert "Drift per feature" in table
    assert "Measures" in table
    assert "drift.feature:income" in table
    assert "latency.p99_ms" in table
    checked = as_json(shipyard("monitor", "run", "churn", "-o", "json"))  # 'run ENDPOINT' is one check now
    assert checked["result"]["drift"]["drifted_features"] == ["income"]
    shown = as_json(shipyard("monitor", "show", "churn", "-o", "json"))
    assert shown["latest_check"]["id"] == checked["id"]
    assert "income" in shipyard("monitor", "show", "churn").stdout

    history = as_json(shipyard("monitor", "history", "churn", "-o", "json"))
    assert [c["id"] for c in history] == [checked["id"], checked["id"] - 1]
    assert "income" in shipyard("monitor", "history", "churn").stdout
    assert [m["endpoint"] for m in as_json(shipyard("monitor", "list", "-o", "json"))] == ["churn"]
    assert "churn" in shipyard("monitor", "list").stdout
    assert "Deleted the monitor of churn" in shipyard("monitor", "delete", "churn").stdout
    assert "has no monitor" in shipyard("monitor", "show", "churn", code=1).stderr


def test_bad_monitors_are_refused_with_what_to_do(shipyard: Invoke, served: Traffic) -> None:
    assert "drift method 'anova' is unknown" in shipyard("monitor", "set", "churn", "--method", "anova", code=1).stderr
    assert "not in the reference profile" in shipyard("monitor", "set", "churn", "--features", "height", code=1).stderr
    assert "FEATURE=NUMBER" in shipyard("monitor", "set", "churn", "--threshold", "0.2", code=2).output
    assert "does not exist" in shipyard("monitor", "set", "nope", code=1).stderr
    assert as_json(shipyard("monitor", "list", "-o", "json")) == []


def test_the_loop_runs_once_over_every_due_monitor(
    shipyard: Invoke, served: Traffic, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipyard("monitor", "set", "churn", "--min-rows", "50")
    monkeypatch.setenv("SHIPYARD_HOME", str(platform.settings.resolved_home()))
    monkeypatch.setenv("SHIPYARD_DATABASE_URL", platform.settings.resolved_database_url())
    result = shipyard("monitor", "run", "--once", "--interval", "5")
    assert "each monitor checked every 5 s (a pass every 5 s)" in result.stdout
    assert "no gateway for resource use" in result.stdout
    history = as_json(shipyard("monitor", "history", "churn", "-o", "json"))
    assert len(history) == 1
    assert history[0]["status"] == "ok"
    shipyard("monitor", "run", "--once")
    assert len(as_json(shipyard("monitor", "history", "churn", "-o", "json"))) == 1, "not due again for 30 s"


def test_option_parsing() -> None:
    assert parse_overrides(["ks", "age=psi", "a=b=c"], "method") == ("ks", {"age": "psi", "a=b": "c"})
    assert parse_thresholds(["age=0.2"]) == {"age": 0.2}
    assert split_features(["a, b", "c"]) == ["a", "b", "c"]
    assert split_features(None) is None
    with pytest.raises(typer.BadParameter, match="numbers"):
        parse_thresholds(["age=high"])
    with pytest.raises(typer.BadParameter, match="FEATURE=VALUE"):
        parse_overrides(["=ks"], "method")
