"""The closed-loop controller: moves each retraining loop's candidate through gate and canary.

One ``tick`` looks at every enabled loop once, each in its own transaction with the loop
row locked (``SKIP LOCKED`` on PostgreSQL, so two controllers never act on one loop):

    new version registered  ->  gating  ->  canary  ->  promoted
                                   |           |
                                rejected   rolled_back      (failed: the endpoint was
                                                              changed by hand mid-canary)

The gate scores the candidate and the production version on the same labelled recent
requests (the prediction log joined with feedback), or compares the metrics recorded on
the two versions. The canary is judged on the requests each version answered in the
canary revision: error rate, p99 latency and, once both have enough labels, quality.
A breach rolls back at once; the candidate is promoted only when the soak window has
passed with nothing breached. Every transition is kept on the cycle and in the audit log,
with the actor being the loop's author, whose rights the loop acts with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import audit, tokens
from shipyard.access.caller import Caller
from shipyard.artifacts import ArtifactStore
from shipyard.errors import InvalidInput
from shipyard.monitoring import feedback, performance, retraining, window
from shipyard.monitoring.retraining import FINISHED, LoopSpec
from shipyard.registry import aliases, formats
from shipyard.registry.predictor import Predictor
from shipyard.serving import revisions
from shipyard.serving.gateway.validation import schema_from_signature
from shipyard.store.engine import Database
from shipyard.store.models import (
    Endpoint,
    LoopCycle,
    ModelVersion,
    PipelineRun,
    Principal,
    RegisteredModel,
    RetrainingLoop,
    now_ms,
)

log = logging.getLogger("shipyard.monitoring.loop")
LOOP_SCOPES = ("read", "write", "promote")
# A p99 rise smaller than this is noise on a fast model, whatever the ratio says.
LATENCY_SLACK_MS = 10.0


@dataclass(frozen=True)
class VersionStats:
    """How one version did in a window: requests, errors, latency, and quality where labelled."""

    requests: int
    error_rate: float
    p99_ms: float | None
    labelled: int
    metric: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "error_rate": self.error_rate,
            "p99_ms": self.p99_ms,
            "labelled": self.labelled,
            "metric": self.metric,
        }


class LoopController:
    """Advances retraining loops; ``tick`` is safe to call from several processes."""

    def __init__(self, db: Database, artifacts: ArtifactStore, log_url: str, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.artifacts = artifacts
        self.log_url = log_url
        self.clock = clock
        self._predictor = lru_cache(maxsize=16)(self._load_predictor)

    def tick(self) -> list[str]:
        """Advance every enabled loop once; the ids of the cycles that changed state."""
        with self.db.session() as session:
            loop_ids = list(session.scalars(select(RetrainingLoop.id).where(RetrainingLoop.enabled.is_(True))))
        changed: list[str] = []
        for loop_id in loop_ids:
            try:
                with self.db.session(write=True) as session:
                    changed.extend(self._advance(session, loop_id))
            except Exception:  # one broken loop must not stop the others
                log.exception("retraining loop %s could not be advanced; it is retried on the next tick", loop_id)
        return changed

    def _advance(self, session: Session, loop_id: str) -> list[str]:
        loop = session.scalar(select(RetrainingLoop).where(RetrainingLoop.id == loop_id).with_for_update(skip_locked=True))
        if loop is None or not loop.enabled:
            return []
        principal = session.get(Principal, loop.run_as)
        endpoint = session.get(Endpoint, loop.endpoint_id)
        if principal is None or endpoint is None:
            return []
        caller = tokens.caller_of(session, principal, LOOP_SCOPES)
        spec = LoopSpec.from_dict(loop.spec)
        now = self.clock()
        cycle = retraining.active_cycle(session, loop)
        started = cycle is None
        if cycle is None:
            cycle = self._start(session, caller, loop, endpoint, spec, now)
            if cycle is None:
                return []
        before = cycle.state
        if cycle.state == "gating":
            self._gate(session, caller, endpoint, spec, cycle, now)
        elif cycle.state == "canary":
            self._judge(session, caller, endpoint, spec, cycle, now)
        return [cycle.id] if started or cycle.state != before else []

    # -- start ---------------------------------------------------------------------------

    def _start(
        self, session: Session, caller: Caller, loop: RetrainingLoop, endpoint: Endpoint, spec: LoopSpec, now: int
    ) -> LoopCycle | None:
        model = session.scalar(
            select(RegisteredModel).where(RegisteredModel.namespace == loop.namespace, RegisteredModel.name == spec.model)
        )
        if model is None:
            return None
        newest = session.scalar(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id, ModelVersion.version > loop.seen_version)
            .order_by(ModelVersion.version.desc())
            .limit(1)
        )
        if newest is None:
            return None
        loop.seen_version = newest.version
        production = production_version(session, caller, endpoint, spec.model)
        if production is None or production == newest.version:
            return None
        cycle = LoopCycle(
            loop_id=loop.id,
            namespace=loop.namespace,
            model=spec.model,
            candidate_version=newest.version,
            baseline_version=production,
            state="new",
            started_at=now,
            updated_at=now,
            detail={"transitions": [], "lineage": _lineage(session, newest)},
        )
        session.add(cycle)
        session.flush()
        origin = cycle.detail["lineage"].get("pipeline_run")
        made_by = f" by pipeline run {origin}" if origin else ""
        self._move(
            session, caller, endpoint, cycle, "gating", f"version {newest.version} of {spec.model!r} registered{made_by}", now
        )
        return cycle

    # -- gate ----------------------------------------------------------------------------

    def _gate(self, session: Session, caller: Caller, endpoint: Endpoint, spec: LoopSpec, cycle: LoopCycle, now: int) -> None:
        gate = spec.gate
        candidate = _version(session, cycle.namespace, cycle.model, cycle.candidate_version)
        baseline = _version(session, cycle.namespace, cycle.model, cycle.baseline_version)
        if candidate is None or baseline is None:
            self._move(session, caller, endpoint, cycle, "failed", "a version of the cycle was deleted", now)
            return
        if gate.data == "registry":
            recorded = (candidate.metrics.get(gate.metric), baseline.metrics.get(gate.metric))
            if recorded[0] is None or recorded[1] is None:
                missing = [f"v{v.version}" for v, s in zip((candidate, baseline), recorded, strict=True) if s is None]
                reason = f"gate: metric {gate.metric!r} is not recorded on {', '.join(missing)}"
                self._move(session, caller, endpoint, cycle, "rejected", reason, now)
                return
            scores = (float(recorded[0]), float(recorded[1]))
            samples = None
        else:
            labelled = self._labelled(session, endpoint, cycle, window.Window(requests=gate.window_requests), now)
            samples = len(labelled)
            if samples < gate.min_samples:
                note = f"gate waits for labelled requests: {samples} of {gate.min_samples}"
                if now - cycle.started_at > gate.wait_seconds * 1000:
                    self._move(session, caller, endpoint, cycle, "rejected", f"{note} after {gate.wait_seconds:g} s", now)
                else:
                    _note(cycle, "waiting", note, now)
                return
            labels = labelled["label"].to_numpy()
            scores = (
                self._score(gate.metric, candidate, labelled, labels),
                self._score(gate.metric, baseline, labelled, labels),
            )
        improvement = gate.improvement(scores[0], scores[1])
        passed = improvement >= gate.min_improvement
        result = {
            "metric": gate.metric,
            "candidate": scores[0],
            "baseline": scores[1],
            "improvement": improvement,
            "min_improvement": gate.min_improvement,
            "samples": samples,
            "data": gate.data,
            "passed": passed,
        }
        _note(cycle, "gate", result, now)
        verdict = (
            f"gate {'passed' if passed else 'failed'}: {gate.metric} v{cycle.candidate_version} {scores[0]:.4g} "
            f"vs v{cycle.baseline_version} {scores[1]:.4g} (improvement {improvement:+.4g}, "
            f"needed {gate.min_improvement:+.4g}{f', on {samples} labelled requests' if samples is not None else ''})"
        )
        if not passed:
            self._move(session, caller, endpoint, cycle, "rejected", verdict, now)
            return
        weight = spec.canary.weight
        routes: list[dict[str, Any]] = [
            {"model": cycle.model, "version": cycle.baseline_version, "weight": 100 - weight},
            {"model": cycle.model, "version": cycle.candidate_version, "weight": weight},
        ]
        cycle.detail = {**cycle.detail, "before_canary": endpoint.current_revision}
        revision = revisions.change(session, caller, cycle.namespace, endpoint.name, routes=routes, reason="traffic")
        cycle.canary_revision = revision.revision
        cycle.canary_since = now
        self._move(
            session, caller, endpoint, cycle, "canary", f"{verdict}; canary at {weight}% in revision {revision.revision}", now
        )

    # -- canary --------------------------------------------------------------------------

    def _judge(self, session: Session, caller: Caller, endpoint: Endpoint, spec: LoopSpec, cycle: LoopCycle, now: int) -> None:
        canary = spec.canary
        if endpoint.current_revision != cycle.canary_revision:
            reason = (
                f"endpoint changed to revision {endpoint.current_revision} during the canary (revision "
                f"{cycle.canary_revision}); the loop leaves it as it is"
            )
            self._move(session, caller, endpoint, cycle, "failed", reason, now)
            return
        assert cycle.canary_since is not None
        elapsed_s = (now - cycle.canary_since) / 1000
        stats = self._canary_stats(session, endpoint, spec, cycle, now)
        candidate, baseline = stats[cycle.candidate_version], stats[cycle.baseline_version or 0]
        _note(cycle, "canary", {f"v{v}": s.to_dict() for v, s in stats.items()} | {"elapsed_s": elapsed_s}, now)
        if candidate.requests < canary.min_requests:
            if elapsed_s > canary.max_wait_seconds:
                reason = f"canary saw {candidate.requests} requests in {elapsed_s:.0f} s, fewer than {canary.min_requests}"
                self._roll_back(session, caller, endpoint, cycle, reason, now)
            return
        breaches = _breaches(spec, candidate, baseline)
        if breaches:
            self._roll_back(session, caller, endpoint, cycle, "canary breached: " + "; ".join(breaches), now)
            return
        if elapsed_s < canary.soak_seconds:
            return
        if canary.min_labels and min(candidate.labelled, baseline.labelled) < canary.min_labels:
            if elapsed_s > canary.max_wait_seconds:
                reason = (
                    f"quality could not be judged: {candidate.labelled} and {baseline.labelled} labelled requests, "
                    f"{canary.min_labels} needed for each"
                )
                self._roll_back(session, caller, endpoint, cycle, reason, now)
            return
        self._promote(session, caller, endpoint, spec, cycle, candidate, now)

    def _canary_stats(
        self, session: Session, endpoint: Endpoint, spec: LoopSpec, cycle: LoopCycle, now: int
    ) -> dict[int, VersionStats]:
        assert cycle.canary_since is not None
        seconds = max((now - cycle.canary_since) / 1000, 0.001)
        frame = self._window(session, endpoint, cycle, window.Window(seconds=seconds), now)
        if len(frame):
            frame = frame[frame["revision"] == cycle.canary_revision]
        labelled = feedback.labelled(session, cycle.namespace, endpoint.id, frame) if len(frame) else frame
        found: dict[int, VersionStats] = {}
        for number in (cycle.candidate_version, cycle.baseline_version or 0):
            mine = frame[frame["version"] == number] if len(frame) else frame
            requests = mine.drop_duplicates("request_id") if len(mine) else mine
            errors = int((requests["status"] >= 400).sum()) if len(requests) else 0
            latency = requests["latency_ms"].to_numpy(dtype=float) if len(requests) else np.zeros(0)
            metric: float | None = None
            count = 0
            if len(labelled):
                rows = labelled[(labelled["version"] == number) & labelled["label"].notna() & (labelled["status"] < 400)]
                count = len(rows)
                version = _version(session, cycle.namespace, cycle.model, number)
                if count and version is not None:
                    metric = self._score(spec.gate.metric, version, rows, rows["label"].to_numpy())
            found[number] = VersionStats(
                requests=len(requests),
                error_rate=errors / len(requests) if len(requests) else 0.0,
                p99_ms=float(np.percentile(latency, 99)) if len(latency) else None,
                labelled=count,
                metric=metric,
            )
        return found

    def _promote(
        self,
        session: Session,
        caller: Caller,
        endpoint: Endpoint,
        spec: LoopSpec,
        cycle: LoopCycle,
        candidate: VersionStats,
        now: int,
    ) -> None:
        aliases.set_alias(session, caller, cycle.namespace, cycle.model, spec.alias, cycle.candidate_version)
        routes = [{"model": cycle.model, "version": cycle.candidate_version, "weight": 100}]
        revision = revisions.change(session, caller, cycle.namespace, endpoint.name, routes=routes, reason="deploy")
        reason = (
            f"canary held for {spec.canary.soak_seconds:g} s over {candidate.requests} requests "
            f"(error rate {candidate.error_rate:.2%}, p99 {_ms(candidate.p99_ms)}, {spec.gate.metric} {_num(candidate.metric)}); "
            f"alias {spec.alias!r} -> v{cycle.candidate_version}, weight 100 in revision {revision.revision}"
        )
        self._move(session, caller, endpoint, cycle, "promoted", reason, now)

    def _roll_back(self, session: Session, caller: Caller, endpoint: Endpoint, cycle: LoopCycle, reason: str, now: int) -> None:
        before = cycle.detail.get("before_canary")
        previous = revisions.list_for(session, caller, cycle.namespace, endpoint.name)
        spec = next((revisions.spec_of(r) for r in previous if r.revision == before), None)
        if spec is None:  # nothing was deployed before the canary: serve production alone
            spec = revisions.RevisionSpec(routes=[{"model": cycle.model, "version": cycle.baseline_version, "weight": 100}])
        revision = revisions.create(session, caller, cycle.namespace, endpoint.name, spec, reason="rollback")
        self._move(
            session,
            caller,
            endpoint,
            cycle,
            "rolled_back",
            f"{reason}; revision {revision.revision} serves v{cycle.baseline_version} again",
            now,
        )

    # -- data ----------------------------------------------------------------------------

    def _window(self, session: Session, endpoint: Endpoint, cycle: LoopCycle, span: window.Window, now: int) -> pd.DataFrame:
        names_for = window.names_from_registry(session, cycle.namespace, cycle.model)
        return window.read(self.log_url, cycle.namespace, endpoint.name, span, end_ms=now, names_for=names_for)

    def _labelled(self, session: Session, endpoint: Endpoint, cycle: LoopCycle, span: window.Window, now: int) -> pd.DataFrame:
        frame = self._window(session, endpoint, cycle, span, now)
        if not len(frame):
            return frame.assign(label=pd.Series(dtype=object))
        frame = feedback.labelled(session, cycle.namespace, endpoint.id, frame[frame["status"] < 400])
        return frame[frame["label"].notna()]

    def _score(self, metric: str, version: ModelVersion, rows: pd.DataFrame, labels: np.ndarray[Any, Any]) -> float:
        """``metric`` of ``version`` predicting ``rows`` offline (the same rows for every version)."""
        names = schema_from_signature(version.signature).names
        if names is None or not set(names) <= set(rows.columns):
            features = [c for c in rows.columns if c not in window.BASE_COLUMNS and c not in ("label", "probabilities")]
        else:
            features = list(names)
        predictor = self._predictor(version.artifact_digest, version.onnx_digest, version.format)
        matrix = rows[features].to_numpy(dtype=np.float64)
        predictions, probabilities = predictor.predict_with_proba(matrix)
        return score(metric, labels, predictions, probabilities, predictor.classes)

    def _load_predictor(self, digest: str, onnx_digest: str | None, fmt: str) -> Predictor:
        onnx = self.artifacts.get_bytes(onnx_digest) if onnx_digest else None
        return formats.load_for_serving(self.artifacts.get_bytes(digest), fmt, onnx)

    # -- records -------------------------------------------------------------------------

    def _move(
        self, session: Session, caller: Caller, endpoint: Endpoint, cycle: LoopCycle, to: str, reason: str, now: int
    ) -> None:
        transition = {"at": now, "from": cycle.state, "to": to, "reason": reason}
        cycle.detail = {**cycle.detail, "transitions": [*cycle.detail.get("transitions", []), transition]}
        cycle.state = to
        cycle.reason = reason
        cycle.updated_at = now
        if to in FINISHED:
            cycle.finished_at = now
        path = f"/api/v1/namespaces/{cycle.namespace}/endpoints/{endpoint.name}/loop/cycles/{cycle.id}"
        audit.record(
            session,
            audit.EventDraft(
                principal=caller.name,
                action=f"loop {to}",
                method="LOOP",
                path=path,
                namespace=cycle.namespace,
                status_code=200,
                message=f"{cycle.model} v{cycle.candidate_version}: {reason}",
            ),
        )
        session.flush()
        log.info(
            "endpoint %s/%s: %s v%s %s: %s", cycle.namespace, endpoint.name, cycle.model, cycle.candidate_version, to, reason
        )


def production_version(session: Session, caller: Caller, endpoint: Endpoint, model: str) -> int | None:
    """The version of ``model`` with the most traffic in the endpoint's current revision."""
    current = revisions.current(session, endpoint)
    if current is None:
        return None
    routes = sorted((r for r in current.routes if r.get("model") == model), key=lambda r: -int(r.get("weight", 0)))
    for route in routes:
        if route.get("version") is not None:
            return int(route["version"])
        if route.get("alias"):
            return aliases.resolve(session, caller, endpoint.namespace, model, route["alias"]).version
    return None


def score(
    metric: str,
    labels: np.ndarray[Any, Any],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float]] | None,
    classes: Sequence[Any] | None,
) -> float:
    """One metric from labels and a model's answers, as the endpoint quality report computes it."""
    if metric in ("mae", "rmse", "r2"):
        found = performance.regression(list(labels), predictions)
    else:
        found = performance.classification(list(labels), predictions, probabilities, classes=classes)
    value = found.get(metric)
    if value is None:
        needs = "class probabilities, which this model does not give" if metric in ("roc_auc", "log_loss") else "more labels"
        raise InvalidInput(f"{metric} cannot be computed on these requests: it needs {needs}; choose another gate metric")
    return float(value)


def _breaches(spec: LoopSpec, candidate: VersionStats, baseline: VersionStats) -> list[str]:
    canary = spec.canary
    found: list[str] = []
    if candidate.error_rate > canary.max_error_rate:
        found.append(f"error rate {candidate.error_rate:.2%} over {canary.max_error_rate:.2%}")
    if candidate.p99_ms is not None:
        if canary.max_latency_p99_ms is not None and candidate.p99_ms > canary.max_latency_p99_ms:
            found.append(f"p99 latency {candidate.p99_ms:.1f} ms over {canary.max_latency_p99_ms:g} ms")
        if (
            canary.max_latency_ratio is not None
            and baseline.p99_ms is not None
            and baseline.requests >= canary.min_requests
            and candidate.p99_ms > baseline.p99_ms * canary.max_latency_ratio
            and candidate.p99_ms - baseline.p99_ms > LATENCY_SLACK_MS
        ):
            found.append(
                f"p99 latency {candidate.p99_ms:.1f} ms over {canary.max_latency_ratio:g}x production's {baseline.p99_ms:.1f} ms"
            )
    enough = canary.min_labels or 1
    if (
        candidate.metric is not None
        and baseline.metric is not None
        and min(candidate.labelled, baseline.labelled) >= enough
        and spec.gate.improvement(candidate.metric, baseline.metric) < -canary.max_quality_drop
    ):
        found.append(
            f"{spec.gate.metric} {candidate.metric:.4g} against production's {baseline.metric:.4g} "
            f"(more than {canary.max_quality_drop:g} worse, on {candidate.labelled} and {baseline.labelled} labelled requests)"
        )
    return found


def _version(session: Session, namespace: str, model: str, number: int | None) -> ModelVersion | None:
    if number is None:
        return None
    return session.scalar(
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.namespace == namespace, RegisteredModel.name == model, ModelVersion.version == number)
    )


def _lineage(session: Session, version: ModelVersion) -> dict[str, Any]:
    """Where the candidate came from: its pipeline run, and what triggered that run."""
    found: dict[str, Any] = {"model_version_id": version.id, "run_id": version.run_id}
    run_id = (version.tags or {}).get("shipyard.pipeline_run")
    if run_id:
        found["pipeline_run"] = run_id
        run = session.get(PipelineRun, run_id)
        if run is not None:
            found["pipeline"] = run.pipeline
            found["trigger"] = run.trigger
    return found


def _note(cycle: LoopCycle, key: str, value: Any, now: int) -> None:
    cycle.detail = {**cycle.detail, key: value}
    cycle.updated_at = now


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
