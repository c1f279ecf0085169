"""Checks over a real prediction log: drift where the traffic moved and nowhere else, traffic measures, and what is not judged.

The reference is 20,000 training rows and the window 1,000 requests of two rows each,
both drawn with fixed seeds from one distribution; the drift tests and thresholds are the
defaults (normed Wasserstein and Jensen-Shannon at 0.1 for references this size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.access.caller import Caller
from shipyard.errors import NotFound, NotVisible, PermissionDenied
from shipyard.monitoring import checks, monitors
from shipyard.monitoring.checks import ResourceReading
from shipyard.monitoring.profile import Profile
from shipyard.runtime import Platform
from shipyard.serving import endpoints
from shipyard.store.models import Monitor, MonitorCheck
from tests.conftest import OTHER, TEAM, MakeCaller
from tests.monitoring.traffic import FEATURES, SYSTEM, Traffic, deploy, population, predict, register

TRAINING = population(20_000, 1)
EXPOSITION = """# HELP shipyard_gateway_process_cpu_percent CPU
# TYPE shipyard_gateway_process_cpu_percent gauge
shipyard_gateway_process_cpu_percent{pid="101"} 12.5
shipyard_gateway_process_cpu_percent{pid="102"} 7.5
# HELP shipyard_gateway_process_resident_memory_bytes RSS
# TYPE shipyard_gateway_process_resident_memory_bytes gauge
shipyard_gateway_process_resident_memory_bytes{pid="101"} 104857600.0
shipyard_gateway_process_resident_memory_bytes{pid="102"} 52428800.0
# HELP shipyard_gateway_requests_total Requests
# TYPE shipyard_gateway_requests_total counter
shipyard_gateway_requests_total{code="200"} 3.0
"""


class World:
    """Endpoint 'churn' in team-a serving v1 (with a reference profile) under a monitor, and its log."""

    def __init__(self, platform: Platform, tmp_path: Path) -> None:
        self.platform = platform
        self.url = str(tmp_path / "predictions")
        self.version = register(platform, TEAM, "churn", TRAINING)
        self.revision = deploy(platform, TEAM, "churn", [{"model": "churn", "version": self.version, "weight": 100}])
        self.traffic = Traffic(self.url, TEAM, "churn")
        self.set_monitor({})

    def set_monitor(self, spec: dict[str, Any], endpoint: str = "churn") -> None:
        with self.platform.db.session(write=True) as session:
            monitors.put(session, SYSTEM, self.platform.artifacts, TEAM, endpoint, spec)

    def check(self, endpoint: str = "churn", caller: Caller = SYSTEM, resources: ResourceReading | None = None) -> MonitorCheck:
        db, artifacts, now = self.platform.db, self.platform.artifacts, self.traffic.now + 1
        return checks.run(db, caller, artifacts, self.url, TEAM, endpoint, now=now, resources=resources)


@pytest.fixture
def world(platform: Platform, teams: tuple[str, str], tmp_path: Path) -> World:
    return World(platform, tmp_path)


def measures(check: MonitorCheck) -> dict[str, float]:
    found: dict[str, float] = check.result["measures"]
    return found


def test_traffic_from_the_training_distribution_does_not_drift(world: World) -> None:
    world.traffic.send(population(2000, 2), revision=world.revision)
    check = world.check()
    assert check.result["status"] == "ok", check.result
    assert (check.rows, check.drifted) == (2000, False)
    found = measures(check)
    assert (found["drift.count"], found["drift.share"], found["prediction_drift"]) == (0.0, 0.0, 0.0)
    assert [found[f"drift.feature:{name}"] for name in FEATURES] == [0.0] * 4
    assert all(0 <= found[f"drift.score:{name}"] < 0.1 for name in FEATURES)
    assert found["quality.failures"] == 0.0
    assert [row["feature"] for row in check.result["features"]] == list(FEATURES)
    assert {row["method"] for row in check.result["features"]} == {"wasserstein"}
    assert check.result["quality"]["ok"] is True
    assert (check.result["model"], check.result["version"]) == ("churn", world.version)


def test_one_shifted_feature_drifts_and_the_others_do_not(world: World) -> None:
    shifted = population(2000, 2)
    shifted["age"] = shifted["age"] + 15.0  # one and a half standard deviations
    world.traffic.send(shifted, revision=world.revision)
    check = world.check()
    found = measures(check)
    assert check.drifted is True
    assert check.result["drift"]["drifted_features"] == ["age"]
    assert (found["drift.count"], found["drift.share"]) == (1.0, 0.25)
    assert found["drift.feature:age"] == 1.0
    assert found["drift.score:age"] > 1.0
    assert [found[f"drift.feature:{name}"] for name in ("income", "score", "visits")] == [0.0, 0.0, 0.0]
    assert found["prediction_drift"] == 0.0, "the model reads score only: its outputs did not move"
    age = next(row for row in check.result["features"] if row["feature"] == "age")
    assert (age["drifted"], age["method"], age["threshold"]) == (True, "wasserstein", 0.1)
    with world.platform.db.session() as session:
        stored = session.get(MonitorCheck, check.id)
        assert stored is not None
        assert stored.result["measures"] == found
        monitor = session.get(Monitor, stored.monitor_id)
        assert monitor is not None
        assert monitor.last_checked_at == check.created_at


def test_moved_predictions_are_prediction_drift(world: World) -> None:
    traffic = population(2000, 2)
    world.traffic.send(traffic, revision=world.revision, predictions=np.ones(len(traffic), dtype=np.int64))
    found = measures(world.check())
    assert found["prediction_drift"] == 1.0
    assert found["prediction_drift.score"] > 0.1
    assert found["drift.count"] == 0.0


def test_class_labels_are_compared_as_categories(world: World) -> None:
    labels = np.where(predict(TRAINING) == 1, "stay", "churn")
    version = register(world.platform, TEAM, "labels", TRAINING, reference=Profile.from_frame(TRAINING.assign(prediction=labels)))
    revision = deploy(world.platform, TEAM, "labels", [{"model": "labels", "version": version}])
    world.set_monitor({}, endpoint="labels")
    traffic = world.traffic = Traffic(world.url, TEAM, "labels", model="labels")  # checks end at its clock
    served = population(2000, 2)
    traffic.send(served, version=version, revision=revision, predictions=np.where(predict(served) == 1, "stay", "churn"))
    check = world.check("labels")
    assert check.result["prediction_drift"]["features"][0]["kind"] == "categorical"
    assert measures(check)["prediction_drift"] == 0.0
    traffic.send(served, version=version, revision=revision, predictions=np.full(len(served), "churn"))
    assert measures(world.check("labels"))["prediction_drift"] == 1.0


def test_traffic_measures_latency_and_errors(world: World) -> None:
    traffic = population(300, 3)
    world.traffic.send(traffic.iloc[:200], revision=world.revision, latency_ms=10.0)
    world.traffic.send(traffic.iloc[200:], revision=world.revision, latency_ms=30.0)  # 50 requests
    world.traffic.fail(50)
    found = measures(world.check())
    assert found["requests"] == 200.0
    assert found["error_rate"] == 0.25
    assert found["latency.p50_ms"] == 10.0
    assert found["latency.p99_ms"] == 30.0
    assert 1.0 <= found["latency.p95_ms"] <= 30.0


def test_too_few_rows_judge_nothing(world: World) -> None:
    world.traffic.send(population(6, 4), revision=world.revision)  # 3 requests
    check = world.check()
    found = measures(check)
    assert check.result["status"] == "too_few_rows"
    assert "too few rows to judge: 6 answered instance(s)" in check.result["message"]
    assert "100 needed (min_rows)" in check.result["message"]
    assert (check.drifted, check.rows) == (False, 6)
    assert not [name for name in found if name.startswith(("drift", "prediction_drift", "quality"))]
    assert found["requests"] == 3.0, "traffic is still counted"
    world.set_monitor({"min_rows": 5})
    assert world.check().result["status"] == "ok"


def test_an_empty_window_counts_zero_requests(world: World) -> None:
    check = world.check()
    assert check.result["status"] == "too_few_rows"
    assert measures(check)["requests"] == 0.0
    assert "latency.p99_ms" not in measures(check)
    assert check.window_start is None


def test_only_the_production_versions_answers_are_judged(world: World) -> None:
    other = register(world.platform, TEAM, "churn", TRAINING)
    routes = [{"model": "churn", "version": other, "weight": 10}, {"model": "churn", "version": 1, "weight": 90}]
    revision = deploy(world.platform, TEAM, "churn", routes)
    world.set_monitor({"window": {"requests": 5000}})
    shifted = population(400, 5)
    shifted["age"] += 30.0
    world.traffic.send(shifted, version=other, revision=revision)  # the canary sees odd traffic
    world.traffic.send(population(2000, 6), version=1, revision=revision)
    check = world.check()
    assert (check.result["version"], check.rows) == (1, 2000)
    assert measures(check)["drift.count"] == 0.0
    assert measures(check)["requests"] == 1200.0


def test_a_version_without_a_reference_says_how_to_get_one(world: World) -> None:
    bare = register(world.platform, TEAM, "bare", TRAINING, profile=False)
    deploy(world.platform, TEAM, "bare", [{"model": "bare", "version": bare}])
    world.set_monitor({}, endpoint="bare")
    check = world.check("bare")
    assert check.result["status"] == "no_reference"
    assert "has no reference profile" in check.result["message"]
    assert "training_data" in check.result["message"]
    assert "drift.count" not in measures(check)
    assert measures(check)["requests"] == 0.0


def test_an_endpoint_serving_nothing_is_checked_for_traffic_only(world: World) -> None:
    with world.platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, TEAM, "idle")
    world.set_monitor({}, endpoint="idle")
    check = world.check("idle")
    assert check.result["status"] == "not_deployed"
    assert "deploy a model" in check.result["message"]


def test_a_spec_that_no_longer_fits_the_reference_is_an_error_check(world: World) -> None:
    world.traffic.send(population(400, 7), revision=world.revision)
    with world.platform.db.session(write=True) as session:
        monitor = session.query(Monitor).one()
        monitor.spec = {**monitor.spec, "features": ["age", "height"]}  # written past validation, e.g. by an old version
    check = world.check()
    assert check.result["status"] == "error"
    assert "does not fit the reference profile" in check.result["message"]
    assert "height" in check.result["message"]


def test_selected_features_methods_and_thresholds_are_used(world: World) -> None:
    world.set_monitor(
        {
            "features": ["age", "score"],
            "drift": {"methods": {"age": "ks"}, "thresholds": {"score": 0.5}},
            "prediction_drift": False,
        }
    )
    world.traffic.send(population(400, 8), revision=world.revision)
    check = world.check()
    rows = {row["feature"]: row for row in check.result["features"]}
    assert list(rows) == ["age", "score"]
    assert (rows["age"]["method"], rows["score"]["threshold"]) == ("ks", 0.5)
    assert "prediction_drift" not in measures(check)
    assert "drift.feature:income" not in measures(check)


def test_resource_use_is_read_from_the_gateways_metrics(world: World) -> None:
    assert checks.resource_measures(EXPOSITION) == {
        "resource.cpu_percent": 20.0,
        "resource.memory_mb": 150.0,
        "resource.workers": 2.0,
    }
    check = world.check(resources=checks.read_resources(lambda: EXPOSITION))
    assert measures(check)["resource.memory_mb"] == 150.0
    assert not any("resource use" in note for note in check.result["notes"])


def test_an_unreachable_gateway_leaves_resource_measures_out_and_says_so(world: World) -> None:
    def unreachable() -> str:
        raise ConnectionRefusedError("connection refused")

    check = world.check(resources=checks.read_resources(unreachable))
    assert not [name for name in measures(check) if name.startswith("resource.")]
    assert any("/metrics could not be read (connection refused)" in note for note in check.result["notes"])
    plain = world.check()
    assert any("SHIPYARD_MONITOR_GATEWAY_URL" in note for note in plain.result["notes"])
    assert "no process gauges" in (checks.read_resources(lambda: "").note or "")


def test_running_a_check_needs_write_access(world: World, make_caller: MakeCaller) -> None:
    with pytest.raises(PermissionDenied):
        world.check(caller=make_caller({TEAM: "viewer"}))
    with pytest.raises(NotVisible):
        world.check(caller=make_caller({OTHER: "admin"}))
    assert world.check(caller=make_caller({TEAM: "editor"})).namespace == TEAM
    with world.platform.db.session(write=True) as session:
        endpoints.create(session, SYSTEM, TEAM, "unwatched")
    with pytest.raises(NotFound, match="has no monitor"):
        world.check("unwatched")
