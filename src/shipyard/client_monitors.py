"""The SDK's monitor and alert methods (a mixin of ``shipyard.Client``).

client.put_monitor("churn", features=["age", "income"], window={"requests": 500},
                   methods={"age": "ks"}, thresholds={"income": 0.2})
check = client.check_monitor("churn")           # runs one check now
check["result"]["measures"]["drift.count"]
client.put_alert_rule("churn-drift", endpoint="churn", measure="drift.count", operator=">=", threshold=1,
                      for_seconds=60, webhook="https://hooks.example.com/x")
client.alerts()                                  # every rule's state, the newest transitions
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard._transport import JSON, Transport, segment


class MonitorsMixin:
    """Endpoint monitors, their checks, and alert rules over the REST API."""

    def put_monitor(
        self: Transport,
        endpoint: str,
        *,
        features: Sequence[str] | None = None,
        window: Mapping[str, Any] | None = None,
        method: str = "auto",
        methods: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        prediction_drift: bool = True,
        quality: Mapping[str, float] | None = None,
        min_rows: int = 100,
        interval_seconds: float | None = None,
        enabled: bool = True,
        namespace: str | None = None,
    ) -> JSON:
        """Create or replace the endpoint's monitor.

        ``window``: ``{"requests": N}`` and/or ``{"seconds": S}``; ``method``: "auto" or one drift
        method for every feature; ``methods`` / ``thresholds``: per-feature overrides; ``quality``:
        missing_rate_increase, out_of_range_share, unseen_share.
        """
        body: JSON = {
            "features": list(features) if features is not None else None,
            "window": dict(window) if window is not None else None,
            "drift": {"method": method, "methods": dict(methods or {}), "thresholds": dict(thresholds or {})},
            "prediction_drift": prediction_drift,
            "quality": dict(quality) if quality is not None else None,
            "min_rows": min_rows,
            "interval_seconds": interval_seconds,
            "enabled": enabled,
        }
        result: JSON = self.request("PUT", _monitor(self._ns(namespace), endpoint), json=body)
        return result

    def get_monitor(self: Transport, endpoint: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", _monitor(self._ns(namespace), endpoint))
        return result

    def list_monitors(self: Transport, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/monitors"))

    def delete_monitor(self: Transport, endpoint: str, *, namespace: str | None = None) -> None:
        """Delete the monitor and its checks; alert rules on the endpoint stay."""
        self.request("DELETE", _monitor(self._ns(namespace), endpoint))

    def check_monitor(self: Transport, endpoint: str, *, namespace: str | None = None) -> JSON:
        """Run one check of the endpoint now and return it (``result``: status, features, measures)."""
        result: JSON = self.request("POST", _monitor(self._ns(namespace), endpoint) + "/check")
        return result

    def monitor_checks(self: Transport, endpoint: str, *, limit: int = 20, namespace: str | None = None) -> list[JSON]:
        """The monitor's checks, newest first."""
        return list(self.request("GET", _monitor(self._ns(namespace), endpoint) + "/checks", params={"limit": limit}))

    def put_alert_rule(
        self: Transport,
        name: str,
        *,
        endpoint: str,
        measure: str,
        operator: str,
        threshold: float,
        for_seconds: float = 0.0,
        webhook: str | None = None,
        enabled: bool = True,
        namespace: str | None = None,
    ) -> JSON:
        """Create or replace a rule: fire when ``measure operator threshold`` has held for ``for_seconds``."""
        body = {
            "endpoint": endpoint,
            "measure": measure,
            "operator": operator,
            "threshold": threshold,
            "for_seconds": for_seconds,
            "webhook": webhook,
            "enabled": enabled,
        }
        result: JSON = self.request("PUT", f"/namespaces/{self._ns(namespace)}/alert-rules/{segment(name)}", json=body)
        return result

    def get_alert_rule(self: Transport, name: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/alert-rules/{segment(name)}")
        return result

    def list_alert_rules(self: Transport, *, namespace: str | None = None) -> list[JSON]:
        return list(self.request("GET", f"/namespaces/{self._ns(namespace)}/alert-rules"))

    def delete_alert_rule(self: Transport, name: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", f"/namespaces/{self._ns(namespace)}/alert-rules/{segment(name)}")

    def alert_history(self: Transport, name: str, *, limit: int = 100, namespace: str | None = None) -> list[JSON]:
        """The rule's transitions (pending, firing, resolved), newest first."""
        url = f"/namespaces/{self._ns(namespace)}/alert-rules/{segment(name)}/history"
        return list(self.request("GET", url, params={"limit": limit}))

    def alerts(self: Transport, *, limit: int = 20, namespace: str | None = None) -> JSON:
        """``{"rules": [...with state...], "transitions": [...newest first...]}``."""
        result: JSON = self.request("GET", f"/namespaces/{self._ns(namespace)}/alerts", params={"limit": limit})
        return result


def _monitor(namespace: str, endpoint: str) -> str:
    return f"/namespaces/{namespace}/endpoints/{segment(endpoint)}/monitor"
