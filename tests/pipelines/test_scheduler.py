"""The scheduler loop on an injected clock: cron, missed times, event triggers, restarts without double runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import events
from shipyard.access import tokens
from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput
from shipyard.pipelines import records, schedules
from shipyard.pipelines.scheduler import UNKNOWN_EXIT, Launch, Scheduler
from shipyard.runtime import Platform
from shipyard.store.models import ScheduleFire, Token
from tests.conftest import OTHER, TEAM, MakeCaller

MINUTE = 60_000


def at(text: str) -> int:
    """'2026-11-22 02:00' (UTC) as epoch milliseconds."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000)


@dataclass
class Clock:
    now: int

    def __call__(self) -> int:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += int(minutes * MINUTE)


@dataclass
class RecordingLauncher:
    """Starts nothing: records what would start, with the token it was given. Runs end when told."""

    launched: list[tuple[Launch, str]] = field(default_factory=list)
    running: set[int] = field(default_factory=set)

    def launch(self, launch: Launch, token: str) -> int:
        self.launched.append((launch, token))
        pid = 10_000 + len(self.launched)
        self.running.add(pid)
        return pid

    def poll(self, pid: int) -> int | None:
        return None if pid in self.running else 0

    @property
    def fired(self) -> list[str]:
        return [launch.schedule for launch, _ in self.launched]


@pytest.fixture
def owner(make_caller: MakeCaller) -> Caller:
    return make_caller({TEAM: "editor", OTHER: "editor"})


def put(platform: Platform, caller: Caller, name: str, now: int, namespace: str = TEAM, **spec: Any) -> None:
    spec.setdefault("pipeline", "pipelines.train:quickstart")
    with platform.db.session(write=True) as session:
        schedules.put(session, caller, namespace, name, spec, now=now)


def emit(platform: Platform, caller: Caller, kind: str, subject: str, namespace: str = TEAM, **payload: Any) -> None:
    with platform.db.session(write=True) as session:
        events.emit(session, caller, namespace, kind, subject, payload)


def fires(platform: Platform, caller: Caller, name: str, namespace: str = TEAM) -> list[ScheduleFire]:
    with platform.db.session() as session:
        return schedules.fires(session, caller, namespace, name)


def test_cron_fires_once_per_due_time_and_never_twice_across_restarts(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 01:58"))
    put(platform, owner, "nightly", clock.now, cron="0 2 * * *", params={"rows": 100}, priority=3)
    launcher = RecordingLauncher()
    scheduler = Scheduler(platform.db, launcher, clock=clock)

    assert scheduler.tick() == []  # 01:58: not yet
    clock.advance(2)  # 02:00
    assert len(scheduler.tick()) == 1
    assert len(scheduler.tick()) == 0, "the same due time fires once"
    launch, token = launcher.launched[0]
    assert (launch.namespace, launch.pipeline, dict(launch.params), launch.priority) == (
        TEAM, "pipelines.train:quickstart", {"rows": 100}, 3,
    )  # fmt: skip
    assert launch.trigger.startswith("schedule/nightly/")

    # The run gets its own token: the owner's, limited to the namespace and to read and write.
    with platform.db.session() as session:
        caller = tokens.authenticate(session, token)
    assert (caller.principal_id, caller.token_namespace, sorted(caller.scopes)) == (owner.principal_id, TEAM, ["read", "write"])

    # A restart at the same moment (a new scheduler on the same database) fires nothing.
    restarted = Scheduler(platform.db, launcher, clock=clock)
    assert restarted.tick() == []
    clock.advance(60 * 24)  # the next night
    assert len(restarted.tick()) == 1
    assert launcher.fired == ["nightly", "nightly"]
    assert [f.due_at for f in fires(platform, owner, "nightly")] == [at("2026-11-23 02:00"), at("2026-11-22 02:00")]


def test_times_missed_while_down_run_once_not_once_each(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 10:00"))
    put(platform, owner, "hourly", clock.now, cron="0 * * * *")
    launcher = RecordingLauncher()
    Scheduler(platform.db, launcher, clock=clock).tick()
    clock.advance(60 * 5 + 30)  # down from 10:00 to 15:30: 11, 12, 13, 14 and 15 o'clock were missed
    after_restart = Scheduler(platform.db, launcher, clock=clock)
    assert len(after_restart.tick()) == 1
    assert after_restart.tick() == []
    [fire] = fires(platform, owner, "hourly")
    assert fire.due_at == at("2026-11-22 15:00"), "the latest missed time is the one run"
    assert "4 earlier due time(s) passed while the scheduler was down" in fire.reason
    clock.advance(30)  # 16:00
    assert len(after_restart.tick()) == 1


def test_time_zones_and_paused_schedules(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 00:30"))
    put(platform, owner, "paris", clock.now, cron="0 2 * * *", timezone="Europe/Paris")  # 02:00 in Paris is 01:00 UTC
    launcher = RecordingLauncher()
    scheduler = Scheduler(platform.db, launcher, clock=clock)
    clock.advance(30)
    assert len(scheduler.tick()) == 1
    with platform.db.session(write=True) as session:
        schedules.set_enabled(session, owner, TEAM, "paris", False, now=clock.now)
    clock.advance(60 * 24 * 3)
    assert scheduler.tick() == [], "a paused schedule does not fire"
    with platform.db.session(write=True) as session:
        schedules.set_enabled(session, owner, TEAM, "paris", True, now=clock.now)
    assert scheduler.tick() == [], "paused times are not made up on resume"
    clock.advance(60 * 24)
    assert len(scheduler.tick()) == 1


def test_event_triggers_fire_once_per_matching_event_even_after_restart(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 09:00"))
    emit(platform, owner, events.DATASET_VERSION, "catalogue", version=1)  # before the schedule: ignored
    put(platform, owner, "on-data", clock.now, on_event={"kind": "dataset.version", "subject": "catalogue"})
    put(platform, owner, "on-alert", clock.now, on_event={"kind": "alert.fired", "subject": "drift-price"})
    put(platform, owner, "after-train", clock.now, on_event={"kind": "pipeline.finished", "subject": "train"})
    launcher = RecordingLauncher()
    scheduler = Scheduler(platform.db, launcher, clock=clock)
    assert scheduler.tick() == []

    emit(platform, owner, events.DATASET_VERSION, "catalogue", version=2)
    emit(platform, owner, events.DATASET_VERSION, "other-data", version=7)
    emit(platform, owner, events.DATASET_VERSION, "catalogue", namespace=OTHER, version=3)  # another team's
    emit(platform, owner, events.ALERT_FIRED, "drift-price", feature="price")
    # A pipeline finishing is an event too: one that fails does not trigger 'after-train', one that succeeds does.
    with platform.db.session(write=True) as session:
        for status in ("failed", "succeeded"):
            run = records.create_run(session, owner, TEAM, "train", {}, {})
            records.update_run(session, owner, TEAM, run.id, status=status)
    assert len(scheduler.tick()) == 3
    assert sorted(launcher.fired) == ["after-train", "on-alert", "on-data"]
    [data_fire] = fires(platform, owner, "on-data")
    assert "dataset.version 'catalogue'" in data_fire.reason
    assert "version 2" in data_fire.reason

    assert Scheduler(platform.db, launcher, clock=clock).tick() == [], "a restart does not replay events"
    emit(platform, owner, events.DATASET_VERSION, "catalogue", version=4)
    emit(platform, owner, events.DATASET_VERSION, "catalogue", version=5)
    assert len(scheduler.tick()) == 2, "one run per new version"
    assert len(fires(platform, owner, "on-data")) == 3


def test_finished_runs_are_reaped_and_their_tokens_revoked(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 09:59"))
    put(platform, owner, "hourly", clock.now, cron="0 * * * *")
    launcher = RecordingLauncher()
    scheduler = Scheduler(platform.db, launcher, clock=clock)
    clock.advance(1)
    assert len(scheduler.tick()) == 1
    launch, _ = launcher.launched[0]
    with platform.db.session(write=True) as session:  # the launched process records its run with the trigger
        run = records.create_run(session, owner, TEAM, "quickstart", {}, {}, trigger=launch.trigger)
    [fire] = fires(platform, owner, "hourly")
    assert (fire.status, fire.pipeline_run_id) == ("launched", run.id)
    launcher.running.clear()  # the process ends
    scheduler.tick()
    [fire] = fires(platform, owner, "hourly")
    assert fire.status == "finished"
    with platform.db.session() as session:
        assert session.get(Token, fire.token_id).revoked_at is not None  # type: ignore[union-attr]


def test_a_crash_between_claim_and_launch_loses_the_firing_instead_of_running_it_late(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 09:59"))
    put(platform, owner, "hourly", clock.now, cron="0 * * * *")

    class Crashing(RecordingLauncher):
        def launch(self, launch: Launch, token: str) -> int:
            raise KeyboardInterrupt  # the process dies mid-launch

    clock.advance(1)
    with pytest.raises(KeyboardInterrupt):
        Scheduler(platform.db, Crashing(), clock=clock).tick()
    launcher = RecordingLauncher()
    Scheduler(platform.db, launcher, clock=clock).tick()
    assert launcher.launched == []
    [fire] = fires(platform, owner, "hourly")
    assert fire.status == "lost"
    with platform.db.session() as session:
        assert session.scalar(select(Token.revoked_at).where(Token.id == fire.token_id)) is not None


def test_a_launch_that_fails_is_recorded_and_a_process_found_after_restart_is_reaped(platform: Platform, owner: Caller) -> None:
    clock = Clock(at("2026-11-22 09:59"))
    put(platform, owner, "hourly", clock.now, cron="0 * * * *")

    class Broken(RecordingLauncher):
        def launch(self, launch: Launch, token: str) -> int:
            raise OSError("no such interpreter")

    clock.advance(1)
    assert Scheduler(platform.db, Broken(), clock=clock).tick() == []
    [fire] = fires(platform, owner, "hourly")
    assert (fire.status, fire.error) == ("failed", "did not start: no such interpreter")

    class Forgetful(RecordingLauncher):
        def poll(self, pid: int) -> int | None:
            return UNKNOWN_EXIT  # a process the previous scheduler started, now gone

    clock.advance(60)
    launcher = Forgetful()
    Scheduler(platform.db, launcher, clock=clock).tick()
    newest = fires(platform, owner, "hourly")[0]
    assert (newest.status, newest.error) == ("finished", "ended while the scheduler was down; see its pipeline run")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"cron": "every day"}, "cron expression 'every day' is not valid"),
        ({"cron": "0 2 * * * *"}, "has 6 fields"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "time zone 'Mars/Olympus' is unknown"),
        ({}, "needs a cron expression, an on_event trigger, or both"),
        ({"on_event": {"kind": "model.deleted", "subject": "x"}}, "event kind 'model.deleted' is unknown"),
        ({"on_event": {"kind": "dataset.version", "subject": "x", "status": "failed"}}, "only pipeline.finished"),
        ({"cron": "0 2 * * *", "pipeline": "no-colon"}, "expected MODULE:NAME or FILE.py:NAME"),
        ({"cron": "0 2 * * *", "workdir": "relative/path"}, "expected an absolute path"),
        ({"cron": "0 2 * * *", "executor": "slurm"}, "executor 'slurm' is unknown"),
        ({"cron": "0 2 * * *", "colour": "red"}, "unknown"),
    ],
)
def test_bad_schedules_are_refused(platform: Platform, owner: Caller, spec: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        put(platform, owner, "bad", at("2026-11-22 09:00"), **spec)
    with platform.db.session() as session:
        assert schedules.list_schedules(session, owner, TEAM) == []
