"""Alert rules: validation and RBAC, the state machine on an injected clock, events, and webhooks over real sockets."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import events, outbound
from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.monitoring import alerts
from shipyard.monitoring.alerts import Notification
from shipyard.pipelines import schedules
from shipyard.pipelines.scheduler import Scheduler
from shipyard.runtime import Platform
from shipyard.store.models import AlertRule, AlertTransition
from tests.conftest import OTHER, TEAM, MakeCaller, free_port
from tests.monitoring.traffic import SYSTEM, deploy, population, register
from tests.pipelines.test_scheduler import RecordingLauncher

T0 = 1_800_000_000_000
SECOND = 1000


@pytest.fixture
def served(platform: Platform, teams: tuple[str, str]) -> str:
    version = register(platform, TEAM, "churn", population(50, 1))
    deploy(platform, TEAM, "churn", [{"model": "churn", "version": version}])
    return "churn"


def put(platform: Platform, name: str, caller: Caller = SYSTEM, now: int = T0, **spec: Any) -> AlertRule:
    spec = {"endpoint": "churn", "measure": "drift.count", "operator": ">=", "threshold": 1, **spec}
    with platform.db.session(write=True) as session:
        return alerts.put(session, caller, TEAM, name, spec, now=now)


def evaluate(platform: Platform, name: str, measures: dict[str, float], now: int) -> Notification | None:
    with platform.db.session(write=True) as session:
        rule = alerts.get(session, SYSTEM, TEAM, name)
        return alerts.evaluate(session, rule, measures, now, check_id=7)


def state(platform: Platform, name: str) -> tuple[str, int]:
    with platform.db.session() as session:
        rule = alerts.get(session, SYSTEM, TEAM, name)
        return rule.state, rule.state_since


def transitions(platform: Platform, name: str) -> list[tuple[str, str]]:
    """(from, to) oldest first."""
    with platform.db.session() as session:
        return [(t.from_state, t.to_state) for t in reversed(alerts.history(session, SYSTEM, TEAM, name))]


DRIFTED = {"drift.count": 2.0, "drift.feature:age": 1.0, "drift.feature:income": 1.0, "drift.feature:score": 0.0}
QUIET = {"drift.count": 0.0, "drift.feature:age": 0.0}


def test_a_rule_fires_only_after_holding_for_its_time_then_resolves(platform: Platform, served: str) -> None:
    put(platform, "churn-drift", for_seconds=60)
    assert evaluate(platform, "churn-drift", DRIFTED, T0) is None
    assert state(platform, "churn-drift") == ("pending", T0)
    assert evaluate(platform, "churn-drift", DRIFTED, T0 + 59 * SECOND) is None
    assert state(platform, "churn-drift") == ("pending", T0), "59 s of the 60 needed: still pending"
    fired = evaluate(platform, "churn-drift", DRIFTED, T0 + 60 * SECOND)
    assert fired is not None
    assert state(platform, "churn-drift") == ("firing", T0 + 60 * SECOND)
    assert (fired.document["state"], fired.document["value"], fired.document["since"]) == ("firing", 2.0, T0)
    assert fired.document["detail"]["drifted_features"] == ["age", "income"]
    assert evaluate(platform, "churn-drift", DRIFTED, T0 + 90 * SECOND) is None, "firing stays firing without a new transition"
    resolved = evaluate(platform, "churn-drift", QUIET, T0 + 120 * SECOND)
    assert resolved is not None
    assert resolved.document["state"] == "resolved"
    assert state(platform, "churn-drift") == ("inactive", T0 + 120 * SECOND)
    assert transitions(platform, "churn-drift") == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    with platform.db.session() as session:
        newest = alerts.history(session, SYSTEM, TEAM, "churn-drift")[0]
        assert (newest.value, newest.detail["check_id"], newest.detail["drifted_features"]) == (0.0, 7, [])
        rule = alerts.get(session, SYSTEM, TEAM, "churn-drift")
        assert (rule.last_value, rule.last_evaluated_at) == (0.0, T0 + 120 * SECOND)


def test_firing_appends_an_alert_fired_event_with_what_was_seen(platform: Platform, served: str) -> None:
    put(platform, "churn-drift")
    evaluate(platform, "churn-drift", DRIFTED, T0)
    with platform.db.session() as session:
        found = events.list_events(session, SYSTEM, TEAM, kind=events.ALERT_FIRED)
    assert [(e.subject, e.created_by) for e in found] == [("churn-drift", "system:shipyard")]
    payload = found[0].payload or {}
    assert {k: payload[k] for k in ("endpoint", "measure", "value", "threshold")} == {
        "endpoint": "churn", "measure": "drift.count", "value": 2.0, "threshold": 1.0,
    }  # fmt: skip
    assert payload["detail"]["drifted_features"] == ["age", "income"]
    evaluate(platform, "churn-drift", QUIET, T0 + SECOND)
    with platform.db.session() as session:
        assert len(events.list_events(session, SYSTEM, TEAM, kind=events.ALERT_FIRED)) == 1, "resolving is no event"


def test_a_firing_starts_the_schedule_triggered_by_it(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    owner = make_caller({TEAM: "editor"})
    with platform.db.session(write=True) as session:
        trigger = {"kind": "alert.fired", "subject": "churn-drift"}
        schedules.put(session, owner, TEAM, "retrain", {"pipeline": "pipelines.train:quickstart", "on_event": trigger})
    put(platform, "churn-drift")
    launcher = RecordingLauncher()
    scheduler = Scheduler(platform.db, launcher)
    assert scheduler.tick() == []
    evaluate(platform, "churn-drift", DRIFTED, T0)
    assert len(scheduler.tick()) == 1
    assert launcher.fired == ["retrain"]


def test_a_condition_that_stops_before_its_time_goes_back_to_inactive(platform: Platform, served: str) -> None:
    put(platform, "slow", measure="latency.p99_ms", operator=">", threshold=250, for_seconds=300)
    evaluate(platform, "slow", {"latency.p99_ms": 400.0}, T0)
    assert evaluate(platform, "slow", {"latency.p99_ms": 100.0}, T0 + 10 * SECOND) is None
    assert state(platform, "slow") == ("inactive", T0 + 10 * SECOND)
    evaluate(platform, "slow", {"latency.p99_ms": 400.0}, T0 + 20 * SECOND)
    evaluate(platform, "slow", {"latency.p99_ms": 400.0}, T0 + 310 * SECOND)
    assert state(platform, "slow")[0] == "pending", "the clock starts again when the condition holds again"
    assert transitions(platform, "slow") == [("inactive", "pending"), ("pending", "inactive"), ("inactive", "pending")]


def test_a_missing_measure_leaves_the_state_as_it_is(platform: Platform, served: str) -> None:
    put(platform, "churn-drift")
    evaluate(platform, "churn-drift", DRIFTED, T0)
    assert evaluate(platform, "churn-drift", {"requests": 3.0}, T0 + SECOND) is None  # too few rows: no drift measures
    assert state(platform, "churn-drift") == ("firing", T0)
    with platform.db.session() as session:
        rule = alerts.get(session, SYSTEM, TEAM, "churn-drift")
        assert (rule.last_value, rule.last_evaluated_at) == (2.0, T0 + SECOND)


@pytest.mark.parametrize(("operator", "fires"), [(">", [3.0]), (">=", [2.0, 3.0]), ("<", [1.0]), ("<=", [1.0, 2.0])])
def test_each_operator_compares_the_value_with_the_threshold(
    platform: Platform, served: str, operator: str, fires: list[float]
) -> None:
    fired = []
    for value in (1.0, 2.0, 3.0):
        put(platform, f"r{int(value)}", operator=operator, threshold=2.0)
        if evaluate(platform, f"r{int(value)}", {"drift.count": value}, T0) is not None:
            fired.append(value)
    assert fired == fires


# -- webhooks -----------------------------------------------------------------------------------


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A real HTTP server on a local socket that keeps what is POSTed to it."""
    found = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            found.received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(found.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/alerts?key=secret"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


def fast_sender(url: str, document: Any) -> str:
    return outbound.post_json(url, document, timeout=2.0, attempts=3, backoff=0.01)


def test_firing_and_resolving_are_posted_to_the_webhook(
    platform: Platform, served: str, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    put(platform, "churn-drift", webhook=hook.url)
    caplog.set_level(logging.INFO, logger="shipyard.monitoring.alerts")
    fired = evaluate(platform, "churn-drift", DRIFTED, T0)
    assert fired is not None
    assert alerts.deliver(platform.db, fired, fast_sender) == "delivered: HTTP 200 (attempt 1 of 3)"
    resolved = evaluate(platform, "churn-drift", QUIET, T0 + SECOND)
    assert resolved is not None
    alerts.deliver(platform.db, resolved, fast_sender)
    assert [r["path"] for r in hook.received] == ["/alerts?key=secret"] * 2
    assert {r["type"] for r in hook.received} == {"application/json"}
    first = hook.received[0]["body"]
    assert {k: first[k] for k in ("alert", "namespace", "endpoint", "state", "measure", "operator", "threshold", "value")} == {
        "alert": "churn-drift", "namespace": TEAM, "endpoint": "churn", "state": "firing", "measure": "drift.count",
        "operator": ">=", "threshold": 1.0, "value": 2.0,
    }  # fmt: skip
    assert first["detail"]["drifted_features"] == ["age", "income"]
    assert hook.received[1]["body"]["state"] == "resolved"
    with platform.db.session() as session:
        assert [t.notified for t in alerts.history(session, SYSTEM, TEAM, "churn-drift")] == [
            "delivered: HTTP 200 (attempt 1 of 3)"
        ] * 2
    messages = [r.getMessage() for r in caplog.records if r.name == "shipyard.monitoring.alerts"]
    assert any(m.startswith("alert churn-drift firing on team-a/churn: drift.count = 2 (>= 1)") for m in messages)
    assert any("alert churn-drift resolved" in m for m in messages)


def test_a_dead_webhook_is_recorded_not_raised(platform: Platform, served: str, hook: Hook) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    put(platform, "dead", webhook=dead)
    fired = evaluate(platform, "dead", DRIFTED, T0)
    assert fired is not None
    outcome = alerts.deliver(platform.db, fired, fast_sender)
    assert outcome is not None
    assert outcome.startswith("failed after 3 attempt(s): ConnectError")
    hook.status = 503
    put(platform, "busy", webhook=hook.url)
    busy = evaluate(platform, "busy", DRIFTED, T0)
    assert busy is not None
    assert alerts.deliver(platform.db, busy, fast_sender) == "failed after 3 attempt(s): HTTP 503"
    assert len(hook.received) == 3, "5xx is retried"
    hook.status = 404
    put(platform, "gone", webhook=hook.url)
    gone = evaluate(platform, "gone", DRIFTED, T0)
    assert gone is not None
    assert alerts.deliver(platform.db, gone, fast_sender) == "refused: HTTP 404 (attempt 1 of 3)"
    with platform.db.session() as session:
        stored = session.scalars(select(AlertTransition.notified).order_by(AlertTransition.id)).all()
    assert [s.split(":")[0] for s in stored if s] == ["failed after 3 attempt(s)", "failed after 3 attempt(s)", "refused"]
    assert state(platform, "dead")[0] == "firing", "the transition stands whatever the webhook did"


def test_a_sender_that_raises_and_a_loop_without_one_lose_nothing(platform: Platform, served: str) -> None:
    put(platform, "x", webhook="https://hooks.example.com/x")
    fired = evaluate(platform, "x", DRIFTED, T0)
    assert fired is not None

    def broken(url: str, document: Any) -> str:
        raise RuntimeError("bug")

    assert alerts.deliver(platform.db, fired, broken) == "failed: RuntimeError: bug"
    assert alerts.deliver(platform.db, fired, None) == "not sent: this monitor loop has no webhook sender"
    put(platform, "quiet")
    quiet = evaluate(platform, "quiet", DRIFTED, T0)
    assert quiet is not None
    assert alerts.deliver(platform.db, quiet, broken) is None, "no webhook: only a log line"


# -- records ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("Bad_Name", {}, "alert rule name 'Bad_Name' is not valid"),
        ("r", {"measure": "drift.total"}, "measure 'drift.total' is unknown: expected one of requests, error_rate"),
        ("r", {"measure": "drift.feature:"}, "is unknown"),
        ("r", {"measure": "latency.p99"}, "is unknown"),
        ("r", {"operator": "=="}, "operator '==' is unknown: expected one of >, >=, <, <="),
        ("r", {"threshold": "high"}, "threshold must be a finite number"),
        ("r", {"threshold": float("nan")}, "threshold must be a finite number"),
        ("r", {"for_seconds": -1}, r"for_seconds must lie in \[0, 604800\]"),
        ("r", {"webhook": "ftp://example.com/x"}, "expected an http:// or https:// URL"),
        ("r", {"webhook": "hooks.example.com"}, "expected an http:// or https:// URL"),
        ("r", {"enabled": "yes"}, "enabled is true or false"),
        ("r", {"severity": "high"}, r"fields \['severity'\] are unknown"),
        ("r", {"endpoint": None}, "needs 'endpoint'"),
    ],
)
def test_bad_rules_say_what_was_expected(platform: Platform, served: str, name: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        put(platform, name, **spec)


def test_per_feature_measures_are_accepted() -> None:
    for measure in ("drift.feature:age", "drift.score:mean radius", "quality.missing_rate:income", "resource.memory_mb"):
        assert alerts.check_measure(measure) == measure


def test_rules_are_listed_replaced_disabled_and_deleted(platform: Platform, served: str, make_caller: MakeCaller) -> None:
    editor = make_caller({TEAM: "editor"})
    put(platform, "b-rule", editor, for_seconds=30)
    put(platform, "a-rule", editor, measure="error_rate", operator=">", threshold=0.05)
    evaluate(platform, "b-rule", DRIFTED, T0)
    with platform.db.session() as session:
        assert [r.name for r in alerts.list_rules(session, editor, TEAM)] == ["a-rule", "b-rule"]
    put(platform, "b-rule", editor, now=T0 + SECOND, for_seconds=60)  # same condition: the pending state stays
    assert state(platform, "b-rule") == ("pending", T0)
    put(platform, "b-rule", editor, now=T0 + 2 * SECOND, threshold=5)  # a new condition starts again
    assert state(platform, "b-rule") == ("inactive", T0 + 2 * SECOND)
    with platform.db.session() as session:
        newest = alerts.history(session, editor, TEAM, "b-rule")[0]
        assert (newest.to_state, newest.detail) == ("inactive", {"reason": "the rule's condition was replaced"})
    evaluate(platform, "b-rule", {"drift.count": 9.0}, T0 + 3 * SECOND)
    put(platform, "b-rule", editor, now=T0 + 4 * SECOND, threshold=5, enabled=False)
    assert state(platform, "b-rule")[0] == "inactive"
    with platform.db.session(write=True) as session:
        alerts.delete(session, editor, TEAM, "b-rule")
    with platform.db.session() as session:
        with pytest.raises(NotFound, match="alert rule 'b-rule' does not exist"):
            alerts.get(session, editor, TEAM, "b-rule")
        assert session.scalars(select(AlertTransition)).all() == [], "the history goes with the rule"


def test_reading_needs_read_changing_needs_write_and_webhooks_stay_private(
    platform: Platform, served: str, make_caller: MakeCaller
) -> None:
    put(platform, "hooked", webhook="https://hooks.example.com/services/T000/B000/XXXX")
    viewer, editor, outsider = make_caller({TEAM: "viewer"}), make_caller({TEAM: "editor"}), make_caller({OTHER: "admin"})
    with platform.db.session() as session:
        rules = alerts.list_rules(session, viewer, TEAM)
        assert alerts.describe_all(session, viewer, TEAM, rules)[0]["webhook"] == "https://hooks.example.com/..."
        assert alerts.describe_all(session, editor, TEAM, rules)[0]["webhook"].endswith("/XXXX")
        assert alerts.describe_all(session, editor, TEAM, rules)[0]["endpoint"] == "churn"
        assert alerts.history(session, viewer, TEAM, "hooked") == []
        with pytest.raises(NotVisible):
            alerts.get(session, outsider, TEAM, "hooked")
        with pytest.raises(NotVisible):
            alerts.recent(session, outsider, TEAM)
    with pytest.raises(PermissionDenied):
        put(platform, "mine", viewer)
    with pytest.raises(NotVisible):
        put(platform, "mine", outsider)
    with platform.db.session(write=True) as session, pytest.raises(PermissionDenied):
        alerts.delete(session, viewer, TEAM, "hooked")
    with pytest.raises(NotFound, match="endpoint 'elsewhere' does not exist"):
        put(platform, "r", endpoint="elsewhere")
