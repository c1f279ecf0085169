"""Executors run step tasks somewhere: ``local`` processes or ``ray`` tasks, behind one small interface."""

from __future__ import annotations

from shipyard.errors import InvalidInput
from shipyard.pipelines.executors.base import Executor, Handle

NAMES = ("local", "ray")


def create(name: str, *, max_parallel: int | None = None, ray_address: str | None = None) -> Executor:
    """The executor called ``name``; Ray is imported only when asked for."""
    if name == "local":
        from shipyard.pipelines.executors.local import LocalExecutor

        return LocalExecutor(max_parallel=max_parallel)
    if name == "ray":
        from shipyard.pipelines.executors.ray import RayExecutor

        return RayExecutor(address=ray_address, max_parallel=max_parallel)
    raise InvalidInput(f"unknown executor {name!r}: expected one of {', '.join(NAMES)}")


__all__ = ["NAMES", "Executor", "Handle", "create"]
