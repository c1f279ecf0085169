"""The monitor loop on an injected clock: intervals, alert rules on new checks, after-tick steps, two loops on one database."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shipyard.monitoring import alerts, checks, monitors
from shipyard.monitoring.loop import MonitorLoop, TickReport
from shipyard.runtime import Platform
from shipyard.store.models import AlertRule, Monitor, MonitorCheck
from tests.conftest import TEAM
from tests.monitoring.traffic import SECOND, SYSTEM, Traffic, deploy, population, register

TRAINING = population(20_000, 1)


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


@dataclass
class World:
    platform: Platform
    url: str
    clock: Clock
    traffic: dict[str, Traffic] = field(default_factory=dict)

    def serve(self, endpoint: str, spec: dict[str, Any] | None = None, *, shifted: bool = False) -> None:
        """``endpoint`` serving a model with a reference, a monitor on it, and 1,000 requests in its log."""
        version = register(self.platform, TEAM, f"{endpoint}-model", TRAINING)
        revision = deploy(self.platform, TEAM, endpoint, [{"model": f"{endpoint}-model", "version": version}])
        with self.platform.db.session(write=True) as session:
            monitors.put(session, SYSTEM, self.platform.artifacts, TEAM, endpoint, spec or {})
        traffic = Traffic(self.url, TEAM, endpoint, model=f"{endpoint}-model", now=self.clock.now - 60 * SECOND)
        rows = population(2000, 2)
        if shifted:
            rows["age"] += 15.0
        traffic.send(rows, version=version, revision=revision, every_ms=1)
        self.traffic[endpoint] = traffic

    def loop(self, **options: Any) -> MonitorLoop:
        return MonitorLoop(self.platform.db, self.platform.artifacts, self.url, clock=self.clock, interval=30.0, **options)

    def rule(self, name: str, endpoint: str, **spec: Any) -> None:
        spec = {"endpoint": endpoint, "measure": "drift.count", "operator": ">=", "threshold": 1, **spec}
        with self.platform.db.session(write=True) as session:
            alerts.put(session, SYSTEM, TEAM, name, spec)

    def checks_of(self, endpoint: str) -> list[MonitorCheck]:
        with self.platform.db.session() as session:
            return monitors.list_checks(session, SYSTEM, TEAM, endpoint, limit=100)

    def state(self, rule: str) -> str:
        with self.platform.db.session() as session:
            return alerts.get(session, SYSTEM, TEAM, rule).state


@pytest.fixture
def world(platform: Platform, teams: tuple[str, str], tmp_path: Path) -> World:
    return World(platform, str(tmp_path / "predictions"), Clock(1_800_000_000_000))


def test_each_monitor_is_checked_once_per_interval(world: World) -> None:
    world.serve("churn")
    world.serve("fraud", {"interval_seconds": 60})
    loop = world.loop()
    assert len(loop.tick().checks) == 2
    assert loop.tick().checks == [], "checked a moment ago: not due"
    world.clock.advance(29)
    assert loop.tick().checks == []
    world.clock.advance(1)
    assert len(loop.tick().checks) == 1
    assert [c.result["status"] for c in world.checks_of("churn")] == ["ok", "ok"]
    assert len(world.checks_of("fraud")) == 1, "its own interval is 60 s"
    world.clock.advance(30)
    loop.tick()
    assert (len(world.checks_of("churn")), len(world.checks_of("fraud"))) == (3, 2)


def test_disabled_monitors_and_rules_are_left_alone(world: World) -> None:
    world.serve("churn", shifted=True)
    with world.platform.db.session(write=True) as session:
        monitors.put(session, SYSTEM, world.platform.artifacts, TEAM, "churn", {}, enabled=False)
    world.rule("off", "churn", enabled=False)
    loop = world.loop()
    assert loop.tick().checks == []
    checks.run(world.platform.db, SYSTEM, world.platform.artifacts, world.url, TEAM, "churn", now=world.clock.now)
    loop.tick()
    assert world.state("off") == "inactive"


def test_rules_move_on_each_new_check_and_notify(world: World) -> None:
    world.serve("churn", shifted=True)
    world.serve("fraud")
    world.rule("churn-drift", "churn", for_seconds=30)
    world.rule("fraud-drift", "fraud")
    world.rule("churn-slow", "churn", measure="latency.p99_ms", operator=">", threshold=1000)
    sent: list[tuple[str, dict[str, Any]]] = []
    world.rule("hooked", "churn", webhook="http://hooks.example.com/x")
    loop = world.loop(send_webhook=lambda url, doc: sent.append((url, dict(doc))) or "delivered: HTTP 200")

    first = loop.tick()
    assert world.state("churn-drift") == "pending"
    assert world.state("hooked") == "firing"
    assert (world.state("fraud-drift"), world.state("churn-slow")) == ("inactive", "inactive")
    assert len(first.notified) == 1
    assert [(url, doc["alert"], doc["state"]) for url, doc in sent] == [("http://hooks.example.com/x", "hooked", "firing")]
    assert sent[0][1]["detail"]["drifted_features"] == ["age"]

    world.clock.advance(10)
    loop.tick()  # no new check: nothing is evaluated, so nothing moves
    assert world.state("churn-drift") == "pending"
    world.clock.advance(20)
    loop.tick()  # the next check, 30 s after the first: held long enough
    assert world.state("churn-drift") == "firing"
    with world.platform.db.session() as session:
        history = alerts.history(session, SYSTEM, TEAM, "hooked")
        assert [t.notified for t in history] == ["delivered: HTTP 200"]


def test_a_new_rule_reads_the_newest_check_and_api_checks_count_too(world: World) -> None:
    world.serve("churn", shifted=True, spec={"interval_seconds": 3600})
    loop = world.loop()
    loop.tick()
    world.rule("late", "churn")
    world.clock.advance(5)
    assert loop.tick().checks == []
    assert world.state("late") == "firing", "a new rule is judged on the newest check there is"
    world.traffic["churn"].send(population(2000, 3), version=1, revision=1, every_ms=1)  # the shift is over
    world.clock.advance(5)
    loop.tick()
    assert world.state("late") == "firing", "no new check yet: nothing changes"
    checks.run(world.platform.db, SYSTEM, world.platform.artifacts, world.url, TEAM, "churn", now=world.clock.now)
    world.clock.advance(1)
    loop.tick()
    assert world.state("late") == "inactive"
    with world.platform.db.session() as session:
        assert [t.to_state for t in alerts.history(session, SYSTEM, TEAM, "late")] == ["resolved", "firing"]


def test_after_tick_steps_run_each_tick_and_one_failing_stops_nothing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.serve("churn")
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("controller down")

    loop = world.loop(after_tick=[broken, lambda: calls.append("controller")])
    report = loop.tick()
    loop.tick()
    assert calls == ["broken", "controller", "broken", "controller"]
    assert any("controller down" in failure for failure in report.failures)
    assert "after-tick step" in caplog.text
    assert len(report.checks) == 1, "the monitor was still checked"


def test_a_broken_monitor_does_not_stop_the_others(world: World) -> None:
    world.serve("churn")
    world.serve("fraud")
    with world.platform.db.session(write=True) as session:
        broken = session.scalars(select(Monitor)).first()
        assert broken is not None
        broken.spec = {"window": "yesterday"}
    report = world.loop().tick()
    assert len(report.checks) == 1
    assert len(report.failures) == 1
    assert "window is a str" in report.failures[0]


def _two_loops_at_once(world: World) -> list[TickReport]:
    loops = [world.loop(), world.loop()]
    start = threading.Barrier(2)
    reports: list[TickReport] = [TickReport(), TickReport()]

    def run(index: int) -> None:
        start.wait()
        reports[index] = loops[index].tick()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return reports


def test_two_loops_on_one_database_check_each_monitor_once(world: World) -> None:
    for name in ("churn", "fraud", "spam"):
        world.serve(name, shifted=True)
    world.rule("churn-drift", "churn", webhook="http://hooks.example.com/x")
    reports = _two_loops_at_once(world)
    assert sorted(len(r.checks) for r in reports) in ([0, 3], [1, 2]), [r.checks for r in reports]
    assert sum(len(r.notified) for r in reports) == 1, "one firing, notified once"
    assert [r.failures for r in reports] == [[], []]
    with world.platform.db.session() as session:
        assert session.scalar(select(func.count()).select_from(MonitorCheck)) == 3
        rule = session.scalars(select(AlertRule)).one()
        assert rule.state == "firing"
        assert len(alerts.history(session, SYSTEM, TEAM, "churn-drift")) == 1
    again = world.loop().tick()  # a third loop, same moment: nothing is due
    assert again.checks == []
