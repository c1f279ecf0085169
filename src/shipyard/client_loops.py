"""The SDK's retraining-loop methods (a mixin of ``shipyard.Client``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard._transport import JSON, Transport, segment


def _loop(client: Transport, namespace: str | None, endpoint: str) -> str:
    return f"/namespaces/{client._ns(namespace)}/endpoints/{segment(endpoint)}/loop"


class LoopsMixin:
    """Closed loops on endpoints: new versions gated, canaried, then promoted or rolled back."""

    def put_loop(
        self: Transport,
        endpoint: str,
        *,
        model: str,
        alias: str = "production",
        gate: Mapping[str, Any] | None = None,
        canary: Mapping[str, Any] | None = None,
        enabled: bool = True,
        namespace: str | None = None,
    ) -> JSON:
        """Create or replace ``endpoint``'s loop; versions of ``model`` registered from now on are candidates."""
        body = {
            "model": model,
            "alias": alias,
            "gate": dict(gate) if gate is not None else None,
            "canary": dict(canary) if canary is not None else None,
            "enabled": enabled,
        }
        result: JSON = self.request("PUT", _loop(self, namespace, endpoint), json=body)
        return result

    def get_loop(self: Transport, endpoint: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", _loop(self, namespace, endpoint))
        return result

    def delete_loop(self: Transport, endpoint: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", _loop(self, namespace, endpoint))

    def loop_cycles(self: Transport, endpoint: str, *, limit: int = 50, namespace: str | None = None) -> list[JSON]:
        """Newest first: each candidate's state, reason, gate and canary measurements, transitions."""
        return list(self.request("GET", _loop(self, namespace, endpoint) + "/cycles", params={"limit": limit}))
