"""Alert rules on an endpoint's measures, and the state machine that fires and resolves them.

A rule names an endpoint, a measure of its monitor's checks (``checks`` lists them, e.g.
``drift.count``, ``drift.feature:age``, ``latency.p99_ms``), a comparison and a threshold,
how long the condition must hold before it fires, and optionally a webhook::

    inactive --holds--> pending --held for_seconds--> firing --stops holding--> inactive
        \\-------------holds, for_seconds = 0------------^       (recorded as "resolved")

    pending --stops holding--> inactive

Every change is an ``AlertTransition`` with the value and detail (which features
drifted). Firing appends an ``alert.fired`` event (subject: the rule's name), which
schedules with the trigger ``alert.fired:<name>`` turn into retraining runs. Firing and
resolving notify: a log line on ``shipyard.monitoring.alerts`` and, where the rule has a
webhook, a JSON document POSTed to it after the transition is committed (``deliver``);
the outcome is stored on the transition, and a dead webhook loses nothing.

A check without the rule's measure (too few rows, no reference) leaves the state as it is.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard import events
from shipyard.access import namespaces
from shipyard.access.caller import SYSTEM, Caller
from shipyard.access.names import dns_label
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, NotFound
from shipyard.serving import endpoints
from shipyard.store.engine import Database
from shipyard.store.models import AlertRule, AlertTransition, Endpoint, now_ms

log = logging.getLogger("shipyard.monitoring.alerts")

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda value, threshold: value > threshold,
    ">=": lambda value, threshold: value >= threshold,
    "<": lambda value, threshold: value < threshold,
    "<=": lambda value, threshold: value <= threshold,
}
MEASURES = (
    "requests", "error_rate", "latency.p50_ms", "latency.p95_ms", "latency.p99_ms",
    "drift.count", "drift.share", "prediction_drift", "prediction_drift.score", "quality.failures",
    "resource.cpu_percent", "resource.memory_mb", "resource.workers",
)  # fmt: skip
PER_FEATURE = ("drift.feature", "drift.score", "quality.missing_rate")  # written "<prefix>:<feature>"
RULE_FIELDS = ("endpoint", "measure", "operator", "threshold", "for_seconds", "webhook", "enabled")
MAX_FOR_SECONDS = 7 * 86_400
MAX_LIST = 1000
_FEATURE = re.compile(r"^[^\s:][^:]{0,254}$")

Sender = Callable[[str, Mapping[str, Any]], str]  # (webhook URL, document) -> outcome; must not raise


# -- validation ---------------------------------------------------------------------------------


def check_name(name: Any) -> str:
    return dns_label(name, "alert rule name", "drift-price")


def check_measure(measure: Any) -> str:
    if isinstance(measure, str) and measure in MEASURES:
        return measure
    prefix, colon, feature = measure.partition(":") if isinstance(measure, str) else ("", "", "")
    if colon and prefix in PER_FEATURE and _FEATURE.match(feature):
        return str(measure)
    raise InvalidInput(
        f"measure {measure!r} is unknown: expected one of {', '.join(MEASURES)}, or "
        f"{', '.join(p + ':<feature>' for p in PER_FEATURE)} (e.g. 'drift.feature:age')"
    )


def check_operator(operator: Any) -> str:
    if operator not in OPERATORS:
        raise InvalidInput(f"operator {operator!r} is unknown: expected one of {', '.join(OPERATORS)}")
    return str(operator)


def check_webhook(url: Any) -> str | None:
    if url is None or url == "":
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise InvalidInput(
            f"webhook {url!r} is not valid: expected an http:// or https:// URL, e.g. 'https://hooks.example.com/x'"
        )
    return str(url)


def _number(value: Any, what: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{what} must be a finite number; got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{what} must lie in [{low:g}, {high:g}]; got {value!r}")
    return float(value)


# -- records ------------------------------------------------------------------------------------


def put(
    session: Session, caller: Caller, namespace: str, name: str, spec: Mapping[str, Any], *, now: int | None = None
) -> AlertRule:
    """Create the rule or replace it. A changed condition (endpoint, measure, comparison) starts again from inactive."""
    caller.require(Action.WRITE, namespace)
    check_name(name)
    unknown = sorted(set(spec) - set(RULE_FIELDS))
    if unknown:
        raise InvalidInput(f"alert rule fields {unknown} are unknown: expected some of {', '.join(RULE_FIELDS)}")
    if not isinstance(spec.get("endpoint"), str):
        raise InvalidInput(f"an alert rule needs 'endpoint': the name of the endpoint it watches; got {spec.get('endpoint')!r}")
    target = endpoints.get(session, caller, namespace, spec["endpoint"])
    measure = check_measure(spec.get("measure"))
    operator = check_operator(spec.get("operator"))
    threshold = _number(spec.get("threshold"), "threshold")
    for_seconds = _number(spec.get("for_seconds", 0), "for_seconds", low=0, high=MAX_FOR_SECONDS)
    webhook = check_webhook(spec.get("webhook"))
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput(f"enabled is true or false; got {enabled!r}")
    moment = now if now is not None else now_ms()
    rule = _find(session, namespace, name)
    if rule is None:
        rule = AlertRule(
            namespace=namespace, name=name, state=INACTIVE, state_since=moment, created_at=moment, created_by=caller.name
        )
        session.add(rule)
    elif (rule.endpoint_id, rule.measure, rule.operator, rule.threshold) != (target.id, measure, operator, threshold):
        _reset(session, rule, moment, "the rule's condition was replaced")
    if not enabled:
        _reset(session, rule, moment, "the rule was disabled")
    rule.endpoint_id, rule.measure, rule.operator, rule.threshold = target.id, measure, operator, threshold
    rule.for_seconds, rule.webhook, rule.enabled, rule.updated_at = for_seconds, webhook, enabled, moment
    session.flush()
    return rule


def _reset(session: Session, rule: AlertRule, now: int, reason: str) -> None:
    """Back to inactive without notifying (the condition it was in no longer exists)."""
    if rule.state == INACTIVE or rule.id is None:
        return
    session.add(
        AlertTransition(
            rule_id=rule.id, namespace=rule.namespace, from_state=rule.state, to_state=INACTIVE, value=rule.last_value,
            detail={"reason": reason}, at=now,
        )
    )  # fmt: skip
    rule.state, rule.state_since = INACTIVE, now


def _find(session: Session, namespace: str, name: str) -> AlertRule | None:
    return session.scalar(select(AlertRule).where(AlertRule.namespace == namespace, AlertRule.name == name))


def get(session: Session, caller: Caller, namespace: str, name: str) -> AlertRule:
    caller.require(Action.READ, namespace)
    rule = _find(session, namespace, name)
    if rule is None:
        raise NotFound(f"alert rule {name!r} does not exist in namespace {namespace!r}")
    return rule


def list_rules(session: Session, caller: Caller, namespace: str) -> list[AlertRule]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    return list(session.scalars(select(AlertRule).where(AlertRule.namespace == namespace).order_by(AlertRule.name)))


def delete(session: Session, caller: Caller, namespace: str, name: str) -> None:
    """Delete the rule and its history."""
    caller.require(Action.WRITE, namespace)
    session.delete(get(session, caller, namespace, name))
    session.flush()


def history(session: Session, caller: Caller, namespace: str, name: str, *, limit: int = 100) -> list[AlertTransition]:
    """The rule's transitions, newest first."""
    rule = get(session, caller, namespace, name)
    _check_limit(limit)
    query = select(AlertTransition).where(AlertTransition.rule_id == rule.id).order_by(AlertTransition.id.desc()).limit(limit)
    return list(session.scalars(query))


def recent(session: Session, caller: Caller, namespace: str, *, limit: int = 20) -> list[tuple[AlertTransition, str]]:
    """(transition, rule name) of the namespace's newest transitions, newest first."""
    namespaces.require_exists(session, caller, namespace, Action.READ)
    _check_limit(limit)
    rows = session.execute(
        select(AlertTransition, AlertRule.name)
        .join(AlertRule, AlertRule.id == AlertTransition.rule_id)
        .where(AlertTransition.namespace == namespace)
        .order_by(AlertTransition.id.desc())
        .limit(limit)
    ).all()
    return [(transition, name) for transition, name in rows]


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit {limit!r} is not valid: expected a whole number from 1 to {MAX_LIST}")


def endpoint_names(session: Session, rules: list[AlertRule]) -> dict[str, str]:
    """endpoint id -> name for the rules' endpoints."""
    ids = {rule.endpoint_id for rule in rules}
    if not ids:
        return {}
    rows = session.execute(select(Endpoint.id, Endpoint.name).where(Endpoint.id.in_(ids))).all()
    return {row.id: row.name for row in rows}


def describe(rule: AlertRule, endpoint: str, *, reveal_webhook: bool) -> dict[str, Any]:
    """The rule as the API shows it. A webhook URL often holds a secret: readers see its scheme and host only."""
    webhook = rule.webhook
    if webhook is not None and not reveal_webhook:
        parts = urlsplit(webhook)
        webhook = f"{parts.scheme}://{parts.hostname}/..."
    return {
        "id": rule.id,
        "namespace": rule.namespace,
        "name": rule.name,
        "endpoint": endpoint,
        "measure": rule.measure,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
        "webhook": webhook,
        "enabled": rule.enabled,
        "state": rule.state,
        "state_since": rule.state_since,
        "last_value": rule.last_value,
        "last_evaluated_at": rule.last_evaluated_at,
        "created_at": rule.created_at,
        "created_by": rule.created_by,
        "updated_at": rule.updated_at,
    }


def describe_all(session: Session, caller: Caller, namespace: str, rules: list[AlertRule]) -> list[dict[str, Any]]:
    """``describe`` for each rule, webhooks revealed to those who may change the rules."""
    names = endpoint_names(session, rules)
    reveal = caller.can(Action.WRITE, namespace)
    return [describe(rule, names.get(rule.endpoint_id, ""), reveal_webhook=reveal) for rule in rules]


def describe_transition(transition: AlertTransition, rule: str) -> dict[str, Any]:
    return {
        "id": transition.id,
        "rule": rule,
        "namespace": transition.namespace,
        "from_state": transition.from_state,
        "to_state": transition.to_state,
        "value": transition.value,
        "detail": dict(transition.detail or {}),
        "notified": transition.notified,
        "at": transition.at,
    }


# -- the state machine --------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """A firing or a resolution to tell people about, once its transition is committed."""

    transition_id: int
    webhook: str | None
    document: dict[str, Any]

    @property
    def summary(self) -> str:
        d = self.document
        return (
            f"alert {d['alert']} {d['state']} on {d['namespace']}/{d['endpoint']}: "
            f"{d['measure']} = {d['value']:g} ({d['operator']} {d['threshold']:g})"
        )


def evaluate(
    session: Session,
    rule: AlertRule,
    measures: Mapping[str, float],
    now: int,
    *,
    endpoint: str | None = None,
    check_id: int | None = None,
) -> Notification | None:
    """Move ``rule`` on with the measures of its endpoint's newest check; a notification when it fired or resolved.

    The caller commits, then hands the notification to ``deliver``.
    """
    rule.last_evaluated_at = now
    value = measures.get(rule.measure)
    if value is None or not math.isfinite(value):
        return None  # the check could not take this measure: nothing is known, nothing changes
    rule.last_value = float(value)
    holds = OPERATORS[rule.operator](float(value), rule.threshold)
    detail = _detail(rule, measures, check_id)
    state = rule.state
    if holds and state == INACTIVE and rule.for_seconds > 0:
        _move(session, rule, PENDING, value, detail, now)
        return None
    if holds and (state == INACTIVE or (state == PENDING and now - rule.state_since >= rule.for_seconds * 1000)):
        held_since = rule.state_since if state == PENDING else now
        transition = _move(session, rule, FIRING, value, detail, now)
        name = endpoint or _endpoint_name(session, rule)
        payload = {
            "endpoint": name,
            "measure": rule.measure,
            "value": float(value),
            "threshold": rule.threshold,
            "detail": detail,
        }
        events.append(session, rule.namespace, events.ALERT_FIRED, rule.name, payload, SYSTEM)
        return _notification(session, rule, transition, name, value, detail, held_since)
    if not holds and state == PENDING:
        _move(session, rule, INACTIVE, value, detail, now)
        return None
    if not holds and state == FIRING:
        fired_at = rule.state_since
        transition = _move(session, rule, INACTIVE, value, detail, now, recorded_as=RESOLVED)
        return _notification(session, rule, transition, endpoint or _endpoint_name(session, rule), value, detail, fired_at)
    return None


def _detail(rule: AlertRule, measures: Mapping[str, float], check_id: int | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"measure": rule.measure, "operator": rule.operator, "threshold": rule.threshold}
    if check_id is not None:
        detail["check_id"] = check_id
    if rule.measure.startswith(("drift.", "prediction_drift")):
        detail["drifted_features"] = sorted(
            key.partition(":")[2] for key, v in measures.items() if key.startswith("drift.feature:") and v >= 1.0
        )
        if "prediction_drift" in measures:
            detail["prediction_drift"] = measures["prediction_drift"] >= 1.0
    return detail


def _move(
    session: Session,
    rule: AlertRule,
    to: str,
    value: float,
    detail: dict[str, Any],
    now: int,
    *,
    recorded_as: str | None = None,
) -> AlertTransition:
    transition = AlertTransition(
        rule_id=rule.id, namespace=rule.namespace, from_state=rule.state, to_state=recorded_as or to, value=float(value),
        detail=detail, at=now,
    )  # fmt: skip
    session.add(transition)
    rule.state, rule.state_since = to, now
    session.flush()
    return transition


def _endpoint_name(session: Session, rule: AlertRule) -> str:
    endpoint = session.get(Endpoint, rule.endpoint_id)
    return endpoint.name if endpoint is not None else ""


def _notification(
    session: Session,
    rule: AlertRule,
    transition: AlertTransition,
    endpoint: str,
    value: float,
    detail: dict[str, Any],
    since: int,
) -> Notification:
    document = {
        "alert": rule.name,
        "namespace": rule.namespace,
        "endpoint": endpoint,
        "state": transition.to_state,
        "measure": rule.measure,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "value": float(value),
        "since": since,
        "at": transition.at,
        "detail": detail,
    }
    return Notification(transition_id=transition.id, webhook=rule.webhook, document=document)


# -- notifying ----------------------------------------------------------------------------------


def deliver(db: Database, notification: Notification, send: Sender | None) -> str | None:
    """Log the notification, POST it to the webhook if there is one, and store the outcome on its transition."""
    firing = notification.document["state"] == FIRING
    log.log(logging.WARNING if firing else logging.INFO, "%s", notification.summary)
    if notification.webhook is None:
        return None
    if send is None:
        outcome = "not sent: this monitor loop has no webhook sender"
    else:
        try:
            outcome = send(notification.webhook, notification.document)
        except Exception as exc:  # a sender must not raise; if one does, the transition still stands
            outcome = f"failed: {type(exc).__name__}: {exc}"
    log.log(logging.INFO if outcome.startswith("delivered") else logging.WARNING, "webhook of alert %s: %s",
            notification.document["alert"], outcome)  # fmt: skip
    with db.session(write=True) as session:
        transition = session.get(AlertTransition, notification.transition_id)
        if transition is not None:
            transition.notified = outcome[:2000]
    return outcome
