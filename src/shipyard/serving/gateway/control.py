"""The gateway's only line to the control plane: the SDK ``Client``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from shipyard.client import Client
from shipyard.errors import ShipyardError


class ControlPlane(Protocol):
    def desired_state(self, etag: str | None) -> Mapping[str, Any] | None:
        """The desired serving state, or None when it still matches ``etag``."""
        ...

    def introspect_token(self, token: str) -> Mapping[str, Any]: ...

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes: ...


class SdkControlPlane:
    """``ControlPlane`` over a ``Client`` authenticated as a platform admin (or a gateway service account)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def desired_state(self, etag: str | None) -> Mapping[str, Any] | None:
        return self.client.desired_state(etag)

    def introspect_token(self, token: str) -> Mapping[str, Any]:
        return self.client.introspect_token(token)

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes:
        url = f"/namespaces/{quote(namespace, safe='')}/models/{quote(model, safe='')}/versions/{int(version)}/artifact"
        return self.client._fetch_bytes(url + ("?variant=onnx" if onnx else ""))  # the digest is checked by the caller

    def close(self) -> None:
        self.client.close()


class ControlPlaneUnavailable(ShipyardError):
    """The control plane did not answer a question the gateway cannot answer alone (a token check)."""

    status_code = 503
    code = "unavailable"
