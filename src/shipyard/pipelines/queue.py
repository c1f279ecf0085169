"""Team queues: namespace quotas and the admission of pipeline runs against them.

A namespace may carry a quota: CPU, memory, GPU, and how many runs it may have running at
once; a limit left empty is no limit. Every new run enters its namespace's queue and is
admitted (``queued -> running``) when it fits beside the runs already running. The queue is
ordered by priority (higher first), then submission time. Admission is strict: it stops at
the first run that does not fit, so a large run is never starved by smaller ones behind it
(Kueue's StrictFIFO). Admission happens in the same transaction as whatever freed capacity
(a run finishing or being cancelled, a quota raised), with the namespace row locked so two
writers never admit past the quota.

A run asks for the largest request among its steps (CPU, memory, GPU): the runner holds at
least that much whenever it runs a step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput
from shipyard.store.models import Namespace, NamespaceQuota, PipelineRun, now_ms

RESOURCES = ("cpu", "memory_mb", "gpu")
MAX_CPU = 1_000_000.0
MAX_MEMORY_MB = 2**40
MAX_RUNS = 1_000_000


@dataclass(frozen=True)
class Usage:
    """A namespace's quota (None: no quota), what its running runs hold, and its queued runs in start order."""

    namespace: str
    quota: NamespaceQuota | None
    running: int
    queued: list[PipelineRun]
    used: dict[str, float]


# -- quotas -----------------------------------------------------------------------------


def _limit(value: Any, what: str, high: float, *, whole: bool = False) -> float | int | None:
    if value is None:
        return None
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or not 0 <= value <= high:
        expected = "a whole number" if whole else "a number"
        raise InvalidInput(f"quota {what} {value!r} is not valid: expected {expected} from 0 to {high:g}, or none for no limit")
    return value


def set_quota(
    session: Session,
    caller: Caller,
    namespace: str,
    *,
    cpu: float | None = None,
    memory_mb: int | None = None,
    gpu: float | None = None,
    concurrent_runs: int | None = None,
) -> NamespaceQuota:
    """Replace the namespace's quota (platform admins only: a team must not raise its own cap)."""
    caller.require_platform_admin("set namespace quotas")
    namespaces.require_exists(session, caller, namespace, Action.READ)
    quota = session.get(NamespaceQuota, namespace)
    if quota is None:
        quota = NamespaceQuota(namespace=namespace, updated_by=caller.name)
        session.add(quota)
    quota.cpu = _limit(cpu, "cpu", MAX_CPU)
    quota.memory_mb = _limit(memory_mb, "memory_mb", MAX_MEMORY_MB, whole=True)  # type: ignore[assignment]
    quota.gpu = _limit(gpu, "gpu", MAX_CPU)
    quota.concurrent_runs = _limit(concurrent_runs, "concurrent_runs", MAX_RUNS, whole=True)  # type: ignore[assignment]
    quota.updated_at = now_ms()
    quota.updated_by = caller.name
    session.flush()
    admit(session, namespace)  # a raised quota lets waiting runs start now
    return quota


def remove_quota(session: Session, caller: Caller, namespace: str) -> None:
    caller.require_platform_admin("remove namespace quotas")
    namespaces.require_exists(session, caller, namespace, Action.READ)
    quota = session.get(NamespaceQuota, namespace)
    if quota is not None:
        session.delete(quota)
        session.flush()
    admit(session, namespace)


def usage(session: Session, caller: Caller, namespace: str) -> Usage:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    running = _running(session, namespace)
    return Usage(namespace, session.get(NamespaceQuota, namespace), len(running), _queue(session, namespace), _sum(running))


# -- admission --------------------------------------------------------------------------


def demand(resources: Mapping[str, Any] | None) -> dict[str, float]:
    """What a run asks for, from its ``resources`` record (missing keys ask for nothing)."""
    found = resources or {}
    return {key: float(found.get(key) or 0) for key in RESOURCES}


def check_fits_at_all(session: Session, namespace: str, resources: Mapping[str, Any] | None) -> None:
    """Refuse a run that could never start, rather than queue it for ever."""
    quota = session.get(NamespaceQuota, namespace)
    if quota is None:
        return
    asked = demand(resources)
    for key in RESOURCES:
        limit = getattr(quota, key)
        if limit is not None and asked[key] > limit:
            raise InvalidInput(
                f"the run asks for {asked[key]:g} {key} but namespace {namespace!r} has a quota of {limit:g}: "
                "lower the largest step's resources, or ask a platform admin to raise the quota"
            )
    if quota.concurrent_runs == 0:
        raise InvalidInput(f"namespace {namespace!r} has a quota of 0 concurrent runs: ask a platform admin to raise it")


def admit(session: Session, namespace: str) -> list[PipelineRun]:
    """Start queued runs of ``namespace`` in queue order while they fit; returns those started."""
    # Lock the namespace so concurrent admissions queue up (SQLite writers already do).
    session.execute(select(Namespace.id).where(Namespace.name == namespace).with_for_update())
    quota = session.get(NamespaceQuota, namespace)
    running = _running(session, namespace)
    used = _sum(running)
    count = len(running)
    started: list[PipelineRun] = []
    now = now_ms()
    for run in _queue(session, namespace):
        asked = demand(run.resources)
        if not _fits(quota, count, used, asked):
            break
        run.status = "running"
        run.started_at = now
        count += 1
        for key in RESOURCES:
            used[key] += asked[key]
        started.append(run)
    if started:
        session.flush()
    return started


def _fits(quota: NamespaceQuota | None, count: int, used: Mapping[str, float], asked: Mapping[str, float]) -> bool:
    if quota is None:
        return True
    if quota.concurrent_runs is not None and count + 1 > quota.concurrent_runs:
        return False
    for key in RESOURCES:
        limit = getattr(quota, key)
        # A small tolerance, so that 0.1 + 0.2 CPU fits a quota of 0.3.
        if limit is not None and used[key] + asked[key] > limit + 1e-9:
            return False
    return True


def _running(session: Session, namespace: str) -> list[PipelineRun]:
    query = select(PipelineRun).where(PipelineRun.namespace == namespace, PipelineRun.status == "running")
    return list(session.scalars(query))


def _queue(session: Session, namespace: str) -> list[PipelineRun]:
    query = (
        select(PipelineRun)
        .where(PipelineRun.namespace == namespace, PipelineRun.status == "queued")
        .order_by(PipelineRun.priority.desc(), PipelineRun.created_at, PipelineRun.id)
    )
    return list(session.scalars(query))


def _sum(runs: list[PipelineRun]) -> dict[str, float]:
    used = dict.fromkeys(RESOURCES, 0.0)
    for run in runs:
        for key, value in demand(run.resources).items():
            used[key] += value
    return used
