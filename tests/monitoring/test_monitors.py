"""Monitor specs (defaults, validation with clear messages) and monitor records (put, get, delete, list, RBAC)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.monitoring import alerts, checks, monitors
from shipyard.monitoring.monitors import MonitorSpec
from shipyard.monitoring.profile import Profile
from shipyard.monitoring.quality import QualityThresholds
from shipyard.monitoring.window import Window
from shipyard.registry import aliases
from shipyard.runtime import Platform
from shipyard.serving import endpoints
from shipyard.store.models import AlertRule, AlertTransition, Monitor, MonitorCheck
from tests.conftest import OTHER, TEAM, MakeCaller
from tests.monitoring.traffic import SYSTEM, deploy, population, register


def test_an_empty_spec_takes_every_default() -> None:
    spec = MonitorSpec.from_dict({})
    assert spec == MonitorSpec()
    assert spec.to_dict() == {
        "features": None,
        "window": {"requests": 1000, "seconds": 86400.0},
        "drift": {"method": "auto", "methods": {}, "thresholds": {}},
        "prediction_drift": True,
        "quality": {"missing_rate_increase": 0.05, "out_of_range_share": 0.05, "unseen_share": 0.05},
        "min_rows": 100,
        "interval_seconds": None,
    }
    assert MonitorSpec.from_dict(spec.to_dict()) == spec


def test_a_full_spec_round_trips() -> None:
    given = {
        "features": ["age", "income"],
        "window": {"requests": 500},
        "drift": {"method": "psi", "methods": {"age": "ks"}, "thresholds": {"age": 0.01, "income": 0.2}},
        "prediction_drift": False,
        "quality": {"missing_rate_increase": 0.1},
        "min_rows": 30,
        "interval_seconds": 60,
    }
    spec = MonitorSpec.from_dict(given)
    assert spec.features == ("age", "income")
    assert spec.window == Window(requests=500)
    assert spec.quality == QualityThresholds(missing_rate_increase=0.1)
    assert (spec.prediction_drift, spec.min_rows, spec.interval_seconds) == (False, 30, 60.0)
    assert MonitorSpec.from_dict(spec.to_dict()) == spec


def test_a_method_for_all_features_applies_where_it_can_and_overrides_win() -> None:
    reference = Profile.from_frame(population(50, 1).assign(city=["a", "b"] * 25))
    drift = MonitorSpec.from_dict({"drift": {"method": "ks", "methods": {"income": "psi"}}}).drift
    chosen = drift.methods_for(reference, ["age", "income", "city"])
    assert chosen == {"age": "ks", "income": "psi"}, "ks does not apply to a categorical column: city keeps auto"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"feature": ["age"]}, r"fields \['feature'\] are unknown"),
        ({"features": "age"}, "non-empty list of feature names"),
        ({"features": []}, "non-empty list"),
        ({"features": ["age", "age"]}, "more than once"),
        ({"features": ["prediction"]}, "watch it with prediction_drift"),
        ({"features": [""]}, "feature name '' is not valid"),
        ({"window": {"rows": 5}}, "window fields|unknown window field"),
        ({"window": {"requests": 0}}, "window requests must be a whole number"),
        ({"window": {"seconds": "an hour"}}, "window seconds must be a number"),
        ({"window": {}}, "needs requests"),
        ({"window": 5}, "window is a int"),
        ({"drift": {"method": "t-test"}}, "drift method 't-test' is unknown: expected 'auto' or one of"),
        ({"drift": {"methods": {"age": "anova"}}}, "drift method 'anova' for feature 'age' is unknown"),
        ({"drift": {"thresholds": {"age": -1}}}, "must be a positive number"),
        ({"drift": {"thresholds": {"age": True}}}, "must be a positive number"),
        ({"drift": {"level": 1}}, r"drift fields \['level'\] are unknown"),
        ({"features": ["age"], "drift": {"methods": {"income": "ks"}}}, "not among features"),
        ({"prediction_drift": "yes"}, "prediction_drift is true or false"),
        ({"quality": {"missing_rate_increase": 2}}, r"must lie in \[0, 1\)"),
        ({"quality": {"nulls": 0.1}}, "quality fields"),
        ({"min_rows": 0}, "min_rows must be a whole number"),
        ({"interval_seconds": 0.1}, "interval_seconds must lie in"),
    ],
)
def test_bad_specs_say_what_was_expected(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        MonitorSpec.from_dict(spec)


# -- records ------------------------------------------------------------------------------------


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> str:
    """Endpoint 'churn' in team-a serving v1 of a model with a reference profile."""
    version = register(platform, TEAM, "churn", population(2000, 1))
    deploy(platform, TEAM, "churn", [{"model": "churn", "version": version, "weight": 100}])
    return "churn"


def put(platform: Platform, caller: Caller, spec: dict[str, Any], endpoint: str = "churn", **options: Any) -> Any:
    with platform.db.session(write=True) as session:
        return monitors.put(session, caller, platform.artifacts, TEAM, endpoint, spec, **options)


def test_monitors_are_put_read_listed_replaced_and_deleted(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    editor = make_caller({TEAM: "editor"})
    created = put(platform, editor, {"features": ["age"], "window": {"requests": 200}}, now=1000)
    assert (created.namespace, created.enabled, created.created_by, created.last_checked_at) == (TEAM, True, editor.name, None)
    with platform.db.session() as session:
        found = monitors.get(session, editor, TEAM, served)
        assert monitors.describe(found, served)["spec"]["window"] == {"requests": 200}
        assert [name for _, name in monitors.list_monitors(session, editor, TEAM)] == ["churn"]
    replaced = put(platform, editor, {"min_rows": 10}, enabled=False, now=2000)
    assert replaced.id == created.id, "one monitor per endpoint: a put replaces it"
    assert (replaced.spec["features"], replaced.spec["min_rows"], replaced.enabled) == (None, 10, False)
    assert (replaced.created_at, replaced.updated_at) == (1000, 2000)
    with platform.db.session(write=True) as session:
        monitors.delete(session, editor, TEAM, served)
    with (
        platform.db.session() as session,
        pytest.raises(NotFound, match="has no monitor: set one with 'shipyard monitor set churn'"),
    ):
        monitors.get(session, editor, TEAM, served)


def test_reading_needs_read_and_changing_needs_write(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    put(platform, make_caller({TEAM: "editor"}), {})
    viewer = make_caller({TEAM: "viewer"})
    with platform.db.session() as session:
        assert monitors.get(session, viewer, TEAM, served).namespace == TEAM
        assert len(monitors.list_checks(session, viewer, TEAM, served)) == 0
    with pytest.raises(PermissionDenied, match="may not write"):
        put(platform, viewer, {})
    with platform.db.session(write=True) as session, pytest.raises(PermissionDenied):
        monitors.delete(session, viewer, TEAM, served)
    outsider = make_caller({OTHER: "admin"})
    with platform.db.session() as session, pytest.raises(NotVisible):
        monitors.get(session, outsider, TEAM, served)
    with pytest.raises(NotVisible):
        put(platform, outsider, {})
    with platform.db.session() as session, pytest.raises(NotVisible):
        monitors.list_monitors(session, outsider, TEAM)


def test_a_monitor_needs_an_existing_endpoint(platform: Platform, served: str) -> None:
    with pytest.raises(NotFound, match="endpoint 'nope' does not exist"):
        put(platform, SYSTEM, {}, endpoint="nope")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"features": ["age", "height"]},
            r"features \['height'\] are not in the reference profile.*expected some of age, income",
        ),
        ({"drift": {"thresholds": {"height": 0.1}}}, r"drift overrides name \['height'\], which are not compared"),
        ({"drift": {"methods": {"age": "ks"}, "thresholds": {"age": 2.0}}}, "is a p-value and must lie in"),
    ],
)
def test_specs_are_checked_against_the_reference_when_there_is_one(
    platform: Platform, served: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        put(platform, SYSTEM, spec)


def test_without_a_reference_only_the_spec_itself_is_checked(platform: Platform, teams: tuple[str, str]) -> None:
    version = register(platform, TEAM, "bare", population(10, 1), profile=False)
    deploy(platform, TEAM, "bare", [{"model": "bare", "version": version}])
    assert put(platform, SYSTEM, {"features": ["anything"]}, endpoint="bare").spec["features"] == ["anything"]


def test_the_production_version_is_the_heaviest_route_with_aliases_resolved(platform: Platform, teams: tuple[str, str]) -> None:
    frame = population(20, 2)
    for _ in range(3):
        register(platform, TEAM, "churn", frame)
    with platform.db.session(write=True) as session:
        aliases.set_alias(session, SYSTEM, TEAM, "churn", "production", 2)
    revision = deploy(
        platform,
        TEAM,
        "ab",
        [{"model": "churn", "version": 1, "weight": 30}, {"model": "churn", "alias": "production", "weight": 70}],
    )
    with platform.db.session() as session:
        endpoint = endpoints.get(session, SYSTEM, TEAM, "ab")
        assert monitors.production(session, endpoint) == monitors.Production("churn", 2, revision)
    deploy(platform, TEAM, "ab", [{"model": "churn", "version": 3, "weight": 50}, {"model": "churn", "version": 1, "weight": 50}])
    with platform.db.session() as session:
        endpoint = endpoints.get(session, SYSTEM, TEAM, "ab")
        assert monitors.production(session, endpoint).version == 3, "equal weights: the first route"  # type: ignore[union-attr]
        assert monitors.reference_of(session, platform.artifacts, endpoint)[1] is not None
    with platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, TEAM, "empty")
    with platform.db.session() as session:
        assert monitors.production(session, endpoints.get(session, SYSTEM, TEAM, "empty")) is None


def test_deleting_the_endpoint_takes_its_monitor_checks_and_alert_rules(platform: Platform, served: str, tmp_path: Any) -> None:
    put(platform, SYSTEM, {})
    checks.run(platform.db, SYSTEM, platform.artifacts, str(tmp_path / "log"), TEAM, served)
    with platform.db.session(write=True) as session:
        rule = alerts.put(
            session, SYSTEM, TEAM, "r", {"endpoint": served, "measure": "requests", "operator": "<", "threshold": 1}
        )
        alerts.evaluate(session, rule, {"requests": 0.0}, 1)
    with platform.db.session(write=True) as session:
        endpoints.delete(session, SYSTEM, TEAM, served)
    with platform.db.session() as session:
        for table in (Monitor, MonitorCheck, AlertRule, AlertTransition):
            assert session.scalars(select(table)).all() == [], table.__name__
