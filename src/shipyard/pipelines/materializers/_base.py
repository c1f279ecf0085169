"""The base class every materializer derives from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class Materializer(ABC):
    """Turns values of some types into bytes and back; subclasses set ``name`` and ``media_type``."""

    name: ClassVar[str]
    media_type: ClassVar[str] = "application/octet-stream"

    @abstractmethod
    def handles(self, value: Any) -> bool:
        """Whether ``dump`` takes this value; cheap, and never imports a heavy library just to answer."""

    @abstractmethod
    def dump(self, value: Any) -> bytes:
        """The value as bytes; equal values must give equal bytes."""

    @abstractmethod
    def load(self, data: bytes) -> Any:
        """The value back from ``dump``'s bytes, without running code the bytes choose."""

    def describe(self, value: Any) -> dict[str, Any]:
        """Small JSON-able facts for lineage and the UI."""
        return {"type": type_name(value)}


def type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
