"""The gateway's only line to the control plane: the SDK ``Client``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from shipyard.client import Client


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
        headers = {"If-None-Match": f'"{etag}"'} if etag else None
        found: Mapping[str, Any] | None = self.client.request("GET", "/serving/desired-state", headers=headers)
        return found

    def introspect_token(self, token: str) -> Mapping[str, Any]:
        found: Mapping[str, Any] = self.client.request("POST", "/tokens:introspect", json={"token": token}, idempotent=True)
        return found

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes:
        url = f"/namespaces/{quote(namespace, safe='')}/models/{quote(model, safe='')}/versions/{int(version)}/artifact"
        return self.client._fetch_bytes(url + ("?variant=onnx" if onnx else ""))  # the digest is checked by the caller

    def close(self) -> None:
        self.client.close()
