"""The scheduler loop: turns schedules that are due, and events that match triggers, into pipeline runs.

Each ``tick`` does three things:

1. In one write transaction, for every enabled schedule: if its cron time has come, record
   one firing keyed by the latest due time and move ``next_due_at`` past now (times missed
   while the scheduler was down run once, not once each); for every new event that
   matches its trigger, record one firing keyed by the event id and move the schedule's
   event cursor on. The firing and the advance commit together, and the key is unique,
   so a restart can never fire the same due time or event twice.
2. Launch each new firing through a ``Launcher`` (by default ``shipyard pipeline run`` in a
   child process), with a fresh token for the schedule's owner that only reaches its
   namespace; the run then waits in the namespace's queue like any other.
3. Reap finished launches: note the outcome and revoke the token.

A firing left ``launching`` by a crash is marked ``lost`` on the next start and never
launched again: at most once beats twice for a training job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import events
from shipyard.access import tokens
from shipyard.access.caller import Caller
from shipyard.errors import ShipyardError
from shipyard.pipelines.schedules import latest_due, next_due
from shipyard.store.engine import Database
from shipyard.store.models import PlatformEvent, Principal, Schedule, ScheduleFire, now_ms

log = logging.getLogger("shipyard.scheduler")

EVENTS_PER_TICK = 100  # per schedule, so an event storm is worked off over several ticks
MISSED_COUNT_CAP = 10_000
UNKNOWN_EXIT = -1000  # a process this scheduler did not start (found after a restart) that has ended
TOKEN_DAYS = 1


def trigger_text(schedule_name: str, fire_id: str) -> str:
    """What a scheduled run records as its trigger (and how a firing finds its run)."""
    return f"schedule/{schedule_name}/{fire_id}"


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one scheduled run, copied out of the database."""

    fire_id: str
    namespace: str
    schedule: str
    pipeline: str
    workdir: str | None
    params: Mapping[str, Any]
    executor: str
    priority: int

    @property
    def trigger(self) -> str:
        return trigger_text(self.schedule, self.fire_id)


class Launcher(Protocol):
    def launch(self, launch: Launch, token: str) -> int:
        """Start the run; returns a process id."""
        ...

    def poll(self, pid: int) -> int | None:
        """The exit status once it has ended (``UNKNOWN_EXIT`` when not known), else None."""
        ...


@dataclass
class ProcessLauncher:
    """``shipyard pipeline run`` in a child process, logging to ``<log_dir>/<fire id>.log``."""

    url: str
    log_dir: Path
    children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def command(self, launch: Launch) -> list[str]:
        command = [sys.executable, "-c", "from shipyard.cli.app import main; main()", "pipeline", "run", launch.pipeline]
        command += ["-n", launch.namespace, "-e", launch.executor, "--priority", str(launch.priority)]
        for key, value in launch.params.items():
            command += ["--param", f"{key}={orjson.dumps(value).decode()}"]
        return command

    def launch(self, launch: Launch, token: str) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The run gets its own identity: none of the scheduler's tokens or targets leak into it.
        private = ("SHIPYARD_URL", "SHIPYARD_NAMESPACE", "SHIPYARD_TRIGGER", "SHIPYARD_DATABASE_URL", "SHIPYARD_HOME")
        env = {k: v for k, v in os.environ.items() if k not in private and not (k.startswith("SHIPYARD_") and "TOKEN" in k)}
        env.update(
            SHIPYARD_URL=self.url, SHIPYARD_TOKEN=token, SHIPYARD_NAMESPACE=launch.namespace, SHIPYARD_TRIGGER=launch.trigger
        )
        with open(self.log_dir / f"{launch.fire_id}.log", "ab") as output:
            # A new session: the run outlives a scheduler restart and reports through the API as usual.
            child = subprocess.Popen(
                self.command(launch),
                cwd=launch.workdir or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children[child.pid] = child
        return child.pid

    def poll(self, pid: int) -> int | None:
        child = self.children.get(pid)
        if child is not None:
            code = child.poll()
            if code is not None:
                del self.children[pid]
            return code
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return UNKNOWN_EXIT
        except PermissionError:
            return None  # alive, another user's
        return None

    def stop(self) -> None:
        """Forget the children; they run on and the next scheduler reaps them by process id."""
        self.children.clear()


class Scheduler:
    def __init__(self, db: Database, launcher: Launcher, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.launcher = launcher
        self.clock = clock
        self._recovered = False

    def tick(self) -> list[str]:
        """One pass: returns the ids of the firings it launched."""
        if not self._recovered:
            self._recover()
            self._recovered = True
        launches = self._claim(self.clock())
        launched = [launch.fire_id for launch in launches if self._launch(launch)]
        self._reap()
        return launched

    # -- 1. claim what is due -----------------------------------------------------------

    def _claim(self, now: int) -> list[Launch]:
        with self.db.session(write=True) as session:
            due = session.scalars(
                select(Schedule).where(Schedule.enabled.is_(True)).order_by(Schedule.id).with_for_update(skip_locked=True)
            )
            last_event = events.last_id(session)
            launches: list[Launch] = []
            for schedule in due:
                if schedule.cron is not None and schedule.next_due_at is not None and schedule.next_due_at <= now:
                    launches += self._fire_cron(session, schedule, now)
                if schedule.on_event is not None and schedule.event_cursor < last_event:
                    launches += self._fire_events(session, schedule, last_event)
            return launches

    def _fire_cron(self, session: Session, schedule: Schedule, now: int) -> list[Launch]:
        assert schedule.cron is not None
        assert schedule.next_due_at is not None
        due = latest_due(schedule.cron, schedule.timezone, now)
        missed = _count_between(schedule.cron, schedule.timezone, schedule.next_due_at, due)
        reason = f"cron '{schedule.cron}' ({schedule.timezone}) due {_iso(due)}"
        if missed:
            reason += f"; {missed} earlier due time(s) passed while the scheduler was down and run this once"
        schedule.next_due_at = next_due(schedule.cron, schedule.timezone, now)
        return _new_fire(session, schedule, f"cron:{due}", due, reason)

    def _fire_events(self, session: Session, schedule: Schedule, last_event: int) -> list[Launch]:
        trigger = schedule.on_event or {}
        found = list(
            session.scalars(
                select(PlatformEvent)
                .where(
                    PlatformEvent.namespace == schedule.namespace,
                    PlatformEvent.kind == trigger.get("kind"),
                    PlatformEvent.subject == trigger.get("subject"),
                    PlatformEvent.id > schedule.event_cursor,
                    PlatformEvent.id <= last_event,
                )
                .order_by(PlatformEvent.id)
                .limit(EVENTS_PER_TICK)
            )
        )
        launches: list[Launch] = []
        for event in found:
            payload = event.payload or {}
            if trigger.get("status") is not None and payload.get("status") != trigger["status"]:
                continue
            reason = f"{event.kind} {event.subject!r} (event {event.id}{_detail(payload)})"
            launches += _new_fire(session, schedule, f"event:{event.id}", event.created_at, reason)
        schedule.event_cursor = found[-1].id if len(found) == EVENTS_PER_TICK else last_event
        return launches

    # -- 2. launch ----------------------------------------------------------------------

    def _launch(self, launch: Launch) -> bool:
        try:
            with self.db.session(write=True) as session:
                fire = session.get(ScheduleFire, launch.fire_id)
                schedule = session.get(Schedule, fire.schedule_id) if fire is not None else None
                if fire is None or schedule is None:
                    return False  # the schedule was deleted meanwhile
                principal = session.get(Principal, schedule.run_as)
                if principal is None or principal.disabled:
                    raise ShipyardError(
                        f"schedule {schedule.name!r} runs as a principal that is gone or disabled: "
                        "apply it again as an active user"
                    )
                issued = tokens.issue(
                    session, Caller.system(), principal, name=f"schedule {schedule.name}", scopes=["read", "write"],
                    days=TOKEN_DAYS, namespace=schedule.namespace,
                )  # fmt: skip
                fire.token_id = issued.token.id
            pid = self.launcher.launch(launch, issued.plaintext)
        except Exception as exc:  # recorded on the firing; the loop goes on
            log.warning("scheduled run %s did not start: %s", launch.fire_id, exc)
            self._settle(launch.fire_id, "failed", f"did not start: {exc}")
            return False
        with self.db.session(write=True) as session:
            fire = session.get(ScheduleFire, launch.fire_id)
            if fire is not None:
                fire.status, fire.pid = "launched", pid
        return True

    # -- 3. reap ------------------------------------------------------------------------

    def _reap(self) -> None:
        with self.db.session() as session:
            launched = [(f.id, f.pid) for f in session.scalars(select(ScheduleFire).where(ScheduleFire.status == "launched"))]
        for fire_id, pid in launched:
            code = self.launcher.poll(pid) if pid is not None else UNKNOWN_EXIT
            if code is None:
                continue
            if code == 0:
                self._settle(fire_id, "finished", None)
            elif code == UNKNOWN_EXIT:
                self._settle(fire_id, "finished", "ended while the scheduler was down; see its pipeline run")
            else:
                self._settle(fire_id, "failed", f"`shipyard pipeline run` exited with status {code}; see its pipeline run")

    def _recover(self) -> None:
        """Firings a crash left between claim and launch are lost, not launched late (at most once)."""
        with self.db.session(write=True) as session:
            stranded = [f.id for f in session.scalars(select(ScheduleFire).where(ScheduleFire.status == "launching"))]
        for fire_id in stranded:
            self._settle(fire_id, "lost", "the scheduler stopped before launching it; it is not run late")

    def _settle(self, fire_id: str, status: str, error: str | None) -> None:
        with self.db.session(write=True) as session:
            fire = session.get(ScheduleFire, fire_id)
            if fire is None:
                return
            fire.status = status  # its pipeline run was linked when the run was recorded (records._link_fire)
            fire.error = error
            if fire.token_id is not None:
                with contextlib.suppress(ShipyardError):
                    tokens.revoke(session, Caller.system(), fire.token_id)


def _new_fire(session: Session, schedule: Schedule, key: str, due: int, reason: str) -> list[Launch]:
    """A firing for ``key`` unless there already is one (then nothing: at most once)."""
    taken = session.scalar(select(ScheduleFire.id).where(ScheduleFire.schedule_id == schedule.id, ScheduleFire.fire_key == key))
    if taken is not None:
        return []
    fire = ScheduleFire(
        schedule_id=schedule.id, namespace=schedule.namespace, fire_key=key, due_at=due, reason=reason, status="launching"
    )
    session.add(fire)
    session.flush()
    launch = Launch(
        fire_id=fire.id,
        namespace=schedule.namespace,
        schedule=schedule.name,
        pipeline=schedule.pipeline,
        workdir=schedule.workdir,
        params=dict(schedule.params or {}),
        executor=schedule.executor,
        priority=schedule.priority,
    )
    return [launch]


def _count_between(cron: str, timezone: str, first: int, last: int) -> int:
    """How many due times from ``first`` up to (not including) ``last``; capped, it is only for the record."""
    count, moment = 0, first
    while moment < last and count < MISSED_COUNT_CAP:
        count += 1
        moment = next_due(cron, timezone, moment)
    return count


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _detail(payload: Mapping[str, Any]) -> str:
    shown = [f"{key} {payload[key]}" for key in ("run_id", "status", "version") if key in payload]
    return ": " + ", ".join(shown) if shown else ""
