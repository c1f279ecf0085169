"""What the SDK's mixins need from ``Client``, declared once: JSON, path segments, requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

JSON = dict[str, Any]


def segment(value: str | int) -> str:
    """``value`` quoted as one URL path segment (slashes included)."""
    return quote(str(value), safe="")


class Transport(Protocol):
    """``Client.request`` and the namespace default, as the mixins call them."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any: ...

    def _ns(self, namespace: str | None) -> str: ...
