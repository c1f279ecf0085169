"""The SDK's retraining-loop methods (a mixin of ``shipyard.Client``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

JSON = dict[str, Any]


class _Transport(Protocol):
    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any: ...

    def _ns(self, namespace: str | None) -> str: ...


def _loop(client: _Transport, namespace: str | None, endpoint: str) -> str:
    return f"/namespaces/{client._ns(namespace)}/endpoints/{quote(endpoint, safe='')}/loop"


class LoopsMixin:
    """Closed loops on endpoints: new versions gated, canaried, then promoted or rolled back."""

    def put_loop(
        self: _Transport,
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

    def get_loop(self: _Transport, endpoint: str, *, namespace: str | None = None) -> JSON:
        result: JSON = self.request("GET", _loop(self, namespace, endpoint))
        return result

    def delete_loop(self: _Transport, endpoint: str, *, namespace: str | None = None) -> None:
        self.request("DELETE", _loop(self, namespace, endpoint))

    def loop_cycles(self: _Transport, endpoint: str, *, limit: int = 50, namespace: str | None = None) -> list[JSON]:
        """Newest first: each candidate's state, reason, gate and canary measurements, transitions."""
        return list(self.request("GET", _loop(self, namespace, endpoint) + "/cycles", params={"limit": limit}))
