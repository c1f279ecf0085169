"""The monitor loop: checks every enabled monitor on its interval and moves alert rules on.

Each ``tick`` does, in order:

1. Claim the monitors that are due (enabled, last checked at least an interval ago) in one
   write transaction that also stamps ``last_checked_at``; on PostgreSQL the rows are
   locked ``FOR UPDATE SKIP LOCKED`` and on SQLite the write lock serialises the claim, so
   two loops on one database never check a monitor twice for the same interval.
2. Run each claimed check (``checks``) with the gateway's resource use, scraped once per tick.
3. Evaluate every enabled alert rule whose endpoint has a check newer than the rule's last
   evaluation (whoever ran the check: this loop, or ``POST .../monitor/check``), rules
   claimed the same way; then deliver the notifications, outside any transaction.
4. Call each ``after_tick`` callable (the closed-loop controller plugs in here); one that
   raises is logged and the others still run.

One failing monitor or rule is logged and retried on a later tick; it never stops the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.artifacts import ArtifactStore
from shipyard.monitoring import alerts, checks
from shipyard.monitoring.checks import MetricsSource
from shipyard.store.engine import Database
from shipyard.store.models import AlertRule, Endpoint, Monitor, MonitorCheck, now_ms

log = logging.getLogger("shipyard.monitoring.loop")

CHECKS_PER_TICK = 100  # the rest wait for the next tick, oldest first
DELIVERY_THREADS = 8


@dataclass
class TickReport:
    """What one pass did: the checks it recorded, the rule transitions it notified, what failed."""

    checks: list[int] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class MonitorLoop:
    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        log_url: str,
        *,
        clock: Callable[[], int] = now_ms,
        interval: float = 30.0,
        after_tick: Sequence[Callable[[], object]] = (),
        send_webhook: alerts.Sender | None = None,
        gateway_metrics: MetricsSource | None = None,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.log_url = log_url
        self.clock = clock
        self.interval = interval
        self.after_tick = list(after_tick)
        self.send_webhook = send_webhook
        self.gateway_metrics = gateway_metrics

    def tick(self) -> TickReport:
        report = TickReport()
        due = self._claim(self.clock())
        if due:
            reading = checks.read_resources(self.gateway_metrics)
            for namespace, endpoint in due:
                self._check(namespace, endpoint, reading, report)
        notifications = self._evaluate(self.clock(), report)
        self._deliver(notifications, report)
        for hook in self.after_tick:
            try:
                hook()
            except Exception as exc:
                log.exception("after-tick step %s failed; the loop goes on", _name(hook))
                report.failures.append(f"{_name(hook)}: {exc}")
        return report

    # -- 1. claim -----------------------------------------------------------------------

    def _claim(self, now: int) -> list[tuple[str, str]]:
        """(namespace, endpoint) of the monitors due now, stamped as checked so no other loop takes them."""
        with self.db.session(write=True) as session:
            rows = session.execute(
                select(Monitor, Endpoint.name)
                .join(Endpoint, Endpoint.id == Monitor.endpoint_id)
                .where(Monitor.enabled.is_(True))
                .order_by(Monitor.last_checked_at.is_not(None), Monitor.last_checked_at, Monitor.id)
                .with_for_update(of=Monitor, skip_locked=True)
            ).all()
            due: list[tuple[str, str]] = []
            for monitor, endpoint in rows:
                if len(due) >= CHECKS_PER_TICK:
                    break
                if monitor.last_checked_at is not None and now - monitor.last_checked_at < self._interval_ms(monitor):
                    continue
                monitor.last_checked_at = now
                due.append((monitor.namespace, endpoint))
            return due

    def _interval_ms(self, monitor: Monitor) -> int:
        seconds = (monitor.spec or {}).get("interval_seconds")
        return int((seconds if isinstance(seconds, int | float) and seconds > 0 else self.interval) * 1000)

    # -- 2. check -----------------------------------------------------------------------

    def _check(self, namespace: str, endpoint: str, reading: checks.ResourceReading, report: TickReport) -> None:
        try:
            check = checks.run(
                self.db, Caller.system(), self.artifacts, self.log_url, namespace, endpoint, now=self.clock(), resources=reading
            )
        except Exception as exc:
            log.exception("monitor of %s/%s could not be checked; it is tried again after its interval", namespace, endpoint)
            report.failures.append(f"{namespace}/{endpoint}: {exc}")
            return
        report.checks.append(check.id)
        status = check.result.get("status")
        if status != checks.OK:
            log.info("monitor of %s/%s: %s", namespace, endpoint, check.result.get("message") or status)
        elif check.drifted:
            log.info("monitor of %s/%s: drift in %s", namespace, endpoint, check.result["drift"]["drifted_features"])

    # -- 3. alert rules -----------------------------------------------------------------

    def _evaluate(self, now: int, report: TickReport) -> list[alerts.Notification]:
        notifications: list[alerts.Notification] = []
        with self.db.session(write=True) as session:
            rules = list(
                session.scalars(
                    select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id).with_for_update(skip_locked=True)
                )
            )
            for rule in rules:
                try:
                    with session.begin_nested():  # one bad rule is rolled back alone
                        found = self._newest_check(session, rule)
                        if found is None:
                            continue
                        check, endpoint = found
                        notification = alerts.evaluate(
                            session, rule, check.result.get("measures") or {}, now, endpoint=endpoint, check_id=check.id
                        )
                    if notification is not None:
                        notifications.append(notification)
                except Exception as exc:
                    log.exception("alert rule %s/%s could not be evaluated", rule.namespace, rule.name)
                    report.failures.append(f"alert rule {rule.namespace}/{rule.name}: {exc}")
        return notifications

    @staticmethod
    def _newest_check(session: Session, rule: AlertRule) -> tuple[MonitorCheck, str] | None:
        """The newest check of the rule's endpoint, if the rule has not seen it yet."""
        row = session.execute(
            select(MonitorCheck, Endpoint.name)
            .join(Monitor, Monitor.id == MonitorCheck.monitor_id)
            .join(Endpoint, Endpoint.id == Monitor.endpoint_id)
            .where(Monitor.endpoint_id == rule.endpoint_id)
            .order_by(MonitorCheck.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        check, endpoint = row
        if rule.last_evaluated_at is not None and check.created_at <= rule.last_evaluated_at:
            return None
        return check, endpoint

    # -- notify -------------------------------------------------------------------------

    def _deliver(self, notifications: list[alerts.Notification], report: TickReport) -> None:
        """Each notification once; webhooks in parallel, so a dead one delays the tick by its own timeout only."""
        if not notifications:
            return
        with ThreadPoolExecutor(max_workers=min(DELIVERY_THREADS, len(notifications))) as pool:
            futures = [pool.submit(alerts.deliver, self.db, n, self.send_webhook) for n in notifications]
        for notification, future in zip(notifications, futures, strict=True):
            try:
                future.result()
                report.notified.append(notification.transition_id)
            except Exception as exc:  # storing the outcome failed; the transition itself is committed
                log.exception("notification of alert %s could not be recorded", notification.document["alert"])
                report.failures.append(f"notification {notification.transition_id}: {exc}")


def _name(hook: Callable[[], object]) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)
