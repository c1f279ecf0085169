"""Retraining loops: what an endpoint's closed loop does with a new model version.

A loop belongs to one endpoint. Every version of its model registered after the loop
last looked (by a retraining pipeline an alert or a schedule launched, or by hand) is a
candidate. The candidate must pass the gate (a metric compared with the production
version on the same labelled data, with a minimum improvement), then serves a small
canary share of the traffic; after the soak window it is promoted (the alias moves and
it takes all the traffic) if its error rate, latency and quality held, or rolled back at
the first breach. ``controller.py`` moves the cycles on; this module keeps the records.

Spec, as data (every field but ``model`` has a default)::

    {"model": "cancer", "alias": "production",
     "gate": {"metric": "accuracy", "min_improvement": 0.0, "data": "feedback",
              "window_requests": 1000, "min_samples": 50, "wait_seconds": 3600},
     "canary": {"weight": 10, "soak_seconds": 300, "min_requests": 50,
                "max_error_rate": 0.01, "max_latency_p99_ms": null, "max_latency_ratio": 2.0,
                "max_quality_drop": 0.02, "min_labels": 30, "max_wait_seconds": 3600}}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry import models
from shipyard.serving import endpoints
from shipyard.store.models import LoopCycle, ModelVersion, RetrainingLoop, now_ms

HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
LOWER_IS_BETTER = ("log_loss", "mae", "rmse")
METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
GATE_DATA = ("feedback", "registry")
ACTIVE = ("gating", "canary")
FINISHED = ("promoted", "rolled_back", "rejected", "failed")


@dataclass(frozen=True)
class Gate:
    """The evaluation gate: ``metric`` of the candidate against production's, on the same data."""

    metric: str = "accuracy"
    min_improvement: float = 0.0  # may be negative: "no worse than" a tolerance
    data: str = "feedback"  # labelled recent requests, or the metrics recorded on the versions
    window_requests: int = 1000
    min_samples: int = 50
    wait_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InvalidInput(f"gate metric {self.metric!r} is unknown: expected one of {', '.join(METRICS)}")
        if self.data not in GATE_DATA:
            raise InvalidInput(f"gate data {self.data!r} is unknown: expected one of {', '.join(GATE_DATA)}")
        _at_least("gate window_requests", self.window_requests, 1)
        _at_least("gate min_samples", self.min_samples, 1)
        _at_least("gate wait_seconds", self.wait_seconds, 0)

    def improvement(self, candidate: float, baseline: float) -> float:
        """How much better the candidate is, in the metric's own direction."""
        return candidate - baseline if self.metric in HIGHER_IS_BETTER else baseline - candidate


@dataclass(frozen=True)
class Canary:
    """The canary: its traffic share, how long it soaks, and what it must hold."""

    weight: int = 10
    soak_seconds: float = 300.0
    min_requests: int = 50
    max_error_rate: float = 0.01
    max_latency_p99_ms: float | None = None
    max_latency_ratio: float | None = 2.0  # the candidate's p99 over production's
    max_quality_drop: float = 0.02
    min_labels: int = 30  # 0: promote on errors and latency alone
    max_wait_seconds: float = 3600.0  # past this without enough evidence, roll back

    def __post_init__(self) -> None:
        if not 1 <= self.weight <= 99:
            raise InvalidInput(f"canary weight must be 1-99 (a share of the traffic in percent), got {self.weight}")
        _at_least("canary soak_seconds", self.soak_seconds, 0)
        _at_least("canary min_requests", self.min_requests, 1)
        if not 0 <= self.max_error_rate <= 1:
            raise InvalidInput(f"canary max_error_rate must be between 0 and 1, got {self.max_error_rate}")
        if self.max_latency_p99_ms is not None:
            _at_least("canary max_latency_p99_ms", self.max_latency_p99_ms, 0)
        if self.max_latency_ratio is not None:
            _at_least("canary max_latency_ratio", self.max_latency_ratio, 1)
        _at_least("canary max_quality_drop", self.max_quality_drop, 0)
        _at_least("canary min_labels", self.min_labels, 0)
        if self.max_wait_seconds < self.soak_seconds:
            raise InvalidInput(
                f"canary max_wait_seconds ({self.max_wait_seconds:g}) is shorter than soak_seconds ({self.soak_seconds:g})"
            )


@dataclass(frozen=True)
class LoopSpec:
    model: str
    alias: str = "production"
    gate: Gate = field(default_factory=Gate)
    canary: Canary = field(default_factory=Canary)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopSpec:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"a loop spec is a {type(data).__name__}: expected a JSON object")
        _known("loop spec", data, {"model", "alias", "gate", "canary"})
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidInput("a loop spec needs 'model': the registered model whose new versions are candidates")
        alias = data.get("alias", "production")
        if not isinstance(alias, str) or not alias:
            raise InvalidInput(f"loop alias {alias!r} is not valid: expected an alias name such as 'production'")
        return cls(model, alias, _build(Gate, "gate", data.get("gate")), _build(Canary, "canary", data.get("canary")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lower_is_better(self) -> bool:
        return self.gate.metric in LOWER_IS_BETTER


def put(
    session: Session, caller: Caller, namespace: str, endpoint_name: str, spec: Mapping[str, Any], *, enabled: bool = True
) -> RetrainingLoop:
    """Create or replace an endpoint's loop. Deploying is what a loop does, so this needs promote rights."""
    namespaces.require_exists(session, caller, namespace, Action.PROMOTE)
    endpoint = endpoints.get(session, caller, namespace, endpoint_name)
    clean = LoopSpec.from_dict(spec)
    model = models.get(session, caller, namespace, clean.model)
    loop = session.scalar(select(RetrainingLoop).where(RetrainingLoop.endpoint_id == endpoint.id))
    if loop is None:
        # Versions that exist now are not candidates: the loop reacts to what comes after it.
        latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id))
        loop = RetrainingLoop(
            namespace=namespace,
            endpoint_id=endpoint.id,
            seen_version=latest or 0,
            run_as=caller.principal_id,
            created_by=caller.name,
        )
        session.add(loop)
    loop.spec = clean.to_dict()
    loop.enabled = enabled
    loop.run_as = caller.principal_id
    loop.updated_at = now_ms()
    session.flush()
    return loop


def get(session: Session, caller: Caller, namespace: str, endpoint_name: str) -> RetrainingLoop:
    endpoint = endpoints.get(session, caller, namespace, endpoint_name)
    loop = session.scalar(select(RetrainingLoop).where(RetrainingLoop.endpoint_id == endpoint.id))
    if loop is None:
        raise NotFound(
            f"endpoint {endpoint_name!r} has no retraining loop: create one with 'shipyard loop set {endpoint_name} --model NAME'"
        )
    return loop


def delete(session: Session, caller: Caller, namespace: str, endpoint_name: str) -> None:
    """Remove the loop; a canary it has running stays as it is (roll it back by hand if needed)."""
    namespaces.require_exists(session, caller, namespace, Action.PROMOTE)
    session.delete(get(session, caller, namespace, endpoint_name))
    session.flush()


def cycles(session: Session, caller: Caller, namespace: str, endpoint_name: str, *, limit: int = 50) -> list[LoopCycle]:
    """The loop's cycles, newest first."""
    loop = get(session, caller, namespace, endpoint_name)
    return list(
        session.scalars(select(LoopCycle).where(LoopCycle.loop_id == loop.id).order_by(LoopCycle.started_at.desc()).limit(limit))
    )


def active_cycle(session: Session, loop: RetrainingLoop) -> LoopCycle | None:
    return session.scalar(
        select(LoopCycle)
        .where(LoopCycle.loop_id == loop.id, LoopCycle.state.in_(ACTIVE))
        .order_by(LoopCycle.started_at.desc())
        .limit(1)
    )


def _build(kind: Any, what: str, data: Any) -> Any:
    if data is None:
        return kind()
    if not isinstance(data, Mapping):
        raise InvalidInput(f"loop {what} is a {type(data).__name__}: expected a JSON object")
    _known(f"loop {what}", data, {f.name for f in fields(kind)})
    try:
        return kind(**data)
    except TypeError as exc:  # pragma: no cover - unknown keys are caught above
        raise InvalidInput(f"loop {what} is not valid: {exc}") from exc


def _known(what: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"unknown {what} field(s) {unknown}: expected some of {sorted(allowed)}")


def _at_least(what: str, value: Any, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise InvalidInput(f"{what} must be a number of at least {low:g}, got {value!r}")
