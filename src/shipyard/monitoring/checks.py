"""One check of an endpoint's monitor: a window of its prediction log against its reference.

A check reads the monitor's window of the log, takes the reference profile of the
endpoint's production version, and records a ``MonitorCheck`` whose ``result`` holds:

- ``status``: ``ok``; ``too_few_rows`` (fewer than ``min_rows`` answered instances of the
  production version: drift and quality are not judged); ``no_reference`` (the version was
  registered without training data); ``not_deployed``; or ``error`` (with ``message``);
- ``features``: one row per feature (method, statistic, p-value, threshold, drifted,
  current missing rate, failed quality checks, or why it was skipped);
- ``drift``, ``prediction_drift``, ``quality``: the reports' summaries;
- ``measures``: a flat ``{name: number}`` map that alert rules read::

      requests, error_rate, latency.p50_ms, latency.p95_ms, latency.p99_ms
      drift.count, drift.share, drift.feature:<name> (1.0 / 0.0), drift.score:<name>
      prediction_drift (1.0 / 0.0), prediction_drift.score
      quality.failures, quality.missing_rate:<name>
      resource.cpu_percent, resource.memory_mb, resource.workers

Traffic measures count every logged (sampled) request of the window, whichever version
answered it; drift and quality use the production version's answered instances only. A
measure a check could not take is absent (never zero), so alert rules on it keep their state.
Resource use is the gateway's as a whole (all its workers, summed), read from its /metrics.

The work happens in three steps so that no database transaction stays open while the log
is read: ``prepare`` (a read), ``compute`` (no database), ``record`` (a short write);
``run`` does all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.artifacts import ArtifactStore
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import reference, window
from shipyard.monitoring.drift import DriftReport, detect_drift, prediction_drift
from shipyard.monitoring.monitors import PREDICTION, MonitorSpec, Production, get, reference_of
from shipyard.monitoring.profile import Profile
from shipyard.monitoring.quality import QualityReport, check_quality
from shipyard.serving import endpoints
from shipyard.serving.gateway.metrics import CPU_PERCENT, RESIDENT_BYTES
from shipyard.store.engine import Database
from shipyard.store.models import Monitor, MonitorCheck, now_ms

MetricsSource = Callable[[], str]  # the gateway's /metrics text; raises when it cannot be read
MIB = 1024 * 1024
OK, TOO_FEW_ROWS, NO_REFERENCE, NOT_DEPLOYED, ERROR = "ok", "too_few_rows", "no_reference", "not_deployed", "error"
NO_GATEWAY = "resource use not measured: no gateway to read it from (set SHIPYARD_MONITOR_GATEWAY_URL)"


@dataclass(frozen=True)
class ResourceReading:
    """What the gateway's /metrics said about its processes, or why nothing was read."""

    measures: Mapping[str, float] = field(default_factory=dict)
    note: str | None = None


def resource_measures(text: str) -> dict[str, float]:
    """``resource.*`` measures from a Prometheus exposition: each worker's gauges summed."""
    cpu: list[float] = []
    memory: list[float] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == CPU_PERCENT:
                cpu.append(float(sample.value))
            elif sample.name == RESIDENT_BYTES:
                memory.append(float(sample.value))
    found: dict[str, float] = {}
    if cpu:
        found["resource.cpu_percent"] = sum(cpu)
    if memory:
        found["resource.memory_mb"] = sum(memory) / MIB
        found["resource.workers"] = float(len(memory))
    return found


def read_resources(source: MetricsSource | None) -> ResourceReading:
    """Scrape the gateway once; never raises: trouble becomes a note and no measures."""
    if source is None:
        return ResourceReading(note=NO_GATEWAY)
    try:
        found = resource_measures(source())
    except Exception as exc:  # unreachable, refused, not Prometheus text: the check goes on without
        return ResourceReading(note=f"resource use not measured: the gateway's /metrics could not be read ({exc})")
    if not found:
        return ResourceReading(note="resource use not measured: the gateway's /metrics has no process gauges")
    return ResourceReading(measures=found)


# -- 1. prepare ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Everything a check needs from the database, read in one short session."""

    monitor_id: str
    namespace: str
    endpoint: str
    spec: MonitorSpec
    production: Production | None
    reference: Profile | None
    names_for: window.NamesFor


def prepare(session: Session, caller: Caller, artifacts: ArtifactStore, namespace: str, endpoint: str) -> Plan:
    """Running a check records it, so it needs write access."""
    caller.require(Action.WRITE, namespace)
    target = endpoints.get(session, caller, namespace, endpoint)
    monitor = get(session, caller, namespace, endpoint)
    served, profile = reference_of(session, artifacts, target)
    names_for: window.NamesFor = (
        window.names_from_registry(session, namespace, served.model) if served is not None else (lambda version: None)
    )
    return Plan(
        monitor_id=monitor.id,
        namespace=namespace,
        endpoint=endpoint,
        spec=MonitorSpec.from_dict(monitor.spec),
        production=served,
        reference=profile,
        names_for=names_for,
    )


# -- 2. compute ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: str
    result: dict[str, Any]
    measures: dict[str, float]
    rows: int = 0
    drifted: bool = False
    window_start: int | None = None
    window_end: int | None = None


def compute(plan: Plan, log_url: str, *, now: int, resources: ResourceReading | None = None) -> Outcome:
    """The check itself: traffic, drift, prediction drift and quality over the window ending at ``now``."""
    notes: list[str] = []
    outcome = Outcome(status=OK, result={}, measures={}, window_end=now)
    served = plan.production
    try:
        frame = window.read(log_url, plan.namespace, plan.endpoint, plan.spec.window, end_ms=now, names_for=plan.names_for)
    except Exception as exc:  # a broken log file must show in the check's history, not only in a log line
        return _finish(plan, outcome, ERROR, f"cannot read the prediction log at {log_url}: {exc}", notes, resources)
    requests = frame[frame["row"] == 0]
    outcome.measures["requests"] = float(len(requests))
    if len(requests):
        latency = requests["latency_ms"].to_numpy(dtype=np.float64)
        for name, value in zip(("p50", "p95", "p99"), np.percentile(latency, [50, 95, 99]), strict=True):
            outcome.measures[f"latency.{name}_ms"] = float(value)
        outcome.measures["error_rate"] = float((requests["status"].to_numpy() >= 400).mean())
        outcome.window_start = int(frame["timestamp_ms"].min())
    if served is None:
        message = f"endpoint {plan.endpoint!r} serves nothing: deploy a model to it, then its traffic can be checked"
        return _finish(plan, outcome, NOT_DEPLOYED, message, notes, resources)
    if plan.reference is None:
        return _finish(plan, outcome, NO_REFERENCE, reference.missing_message(served.model, served.version), notes, resources)
    answered = frame[(frame["status"].to_numpy() < 400) & (frame["version"].to_numpy() == served.version)]
    outcome.rows = len(answered)
    if outcome.rows < plan.spec.min_rows:
        message = (
            f"too few rows to judge: {outcome.rows} answered instance(s) of {served.model} v{served.version} in the "
            f"window, {plan.spec.min_rows} needed (min_rows); drift and quality are not judged"
        )
        return _finish(plan, outcome, TOO_FEW_ROWS, message, notes, resources)
    try:
        _judge(plan, plan.reference, answered, outcome, notes)
    except InvalidInput as exc:
        return _finish(
            plan, outcome, ERROR, f"the monitor's spec does not fit the reference profile: {exc.message}", notes, resources
        )
    return _finish(plan, outcome, OK, None, notes, resources)


def _judge(plan: Plan, ref: Profile, answered: pd.DataFrame, outcome: Outcome, notes: list[str]) -> None:
    spec = plan.spec
    features = spec.features_in(ref)
    inputs = Profile(columns={n: ref.columns[n] for n in features if n in ref.columns}, rows=ref.rows, top_k=ref.top_k)
    current = answered[[name for name in features if name in answered.columns]]
    drift = detect_drift(
        inputs, current, columns=features, methods=spec.drift.methods_for(ref, features), thresholds=dict(spec.drift.thresholds)
    )
    quality = check_quality(inputs, current, thresholds=spec.quality)
    predicted = _prediction_drift(plan, ref, answered, notes)
    measures = outcome.measures  # only once every report is in: a spec error leaves no half-set measures
    measures["drift.count"] = float(len(drift.drifted_features))
    measures["drift.share"] = drift.share_drifted
    for result in drift.features:
        measures[f"drift.feature:{result.feature}"] = 1.0 if result.drifted else 0.0
        measures[f"drift.score:{result.feature}"] = result.statistic
    measures["quality.failures"] = float(len(quality.failures) + len(quality.schema.missing) + len(quality.schema.changed))
    for check in quality.checks:
        if check.check == "missing_rate":
            measures[f"quality.missing_rate:{check.feature}"] = check.current
    if predicted is not None and predicted.features:
        result = predicted.features[0]
        measures["prediction_drift.score"] = result.statistic
        measures["prediction_drift"] = 1.0 if result.drifted else 0.0
    outcome.drifted = bool(drift.drifted_features) or bool(predicted is not None and predicted.drifted_features)
    outcome.result["features"] = _table(features, drift, quality)
    outcome.result["drift"] = {k: v for k, v in drift.to_dict().items() if k != "features"}
    outcome.result["prediction_drift"] = predicted.to_dict() if predicted is not None else None
    outcome.result["quality"] = quality.to_dict()


def _prediction_drift(plan: Plan, ref: Profile, answered: pd.DataFrame, notes: list[str]) -> DriftReport | None:
    if not plan.spec.prediction_drift:
        return None
    column = ref.columns.get(PREDICTION)
    if column is None:
        notes.append(f"prediction drift not judged: the reference profile has no {PREDICTION!r} column")
        return None
    values = answered[PREDICTION]
    current = _numeric(values) if column.kind == "numeric" else values.map(_label)
    if current is None:
        notes.append("prediction drift not judged: the logged predictions are not numbers, as the reference's are")
        return None
    outputs = Profile(columns={PREDICTION: column}, rows=ref.rows, top_k=ref.top_k)
    report = prediction_drift(outputs, current.astype(np.float64 if column.kind == "numeric" else object).to_frame(PREDICTION))
    for name, reason in report.skipped.items():
        notes.append(f"prediction drift not judged on {name!r}: {reason}")
    return report


def _label(value: Any) -> str | None:
    """A prediction as the reference profile keeps categories: ``str(value)``; missing stays missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _numeric(values: pd.Series) -> pd.Series | None:
    try:
        return pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):  # lists, objects: several outputs per row
        return None


def _table(features: list[str], drift: DriftReport, quality: QualityReport) -> list[dict[str, Any]]:
    """One row per feature: its drift result, its missing rate now, and the quality checks it failed."""
    results = {result.feature: result for result in drift.features}
    missing = {c.feature: c.current for c in quality.checks if c.check == "missing_rate"}
    failed: dict[str, list[str]] = {}
    for check in quality.failures:
        failed.setdefault(check.feature, []).append(check.check)
    rows: list[dict[str, Any]] = []
    for name in features:
        found = results.get(name)
        row: dict[str, Any] = {"feature": name}
        if found is not None:
            row.update(found.to_dict())
        else:
            row.update(skipped=drift.skipped.get(name, "not compared"), drifted=None)
        row["missing_rate"] = missing.get(name)
        row["quality_failed"] = failed.get(name, [])
        rows.append(row)
    return rows


def _finish(
    plan: Plan, outcome: Outcome, status: str, message: str | None, notes: list[str], resources: ResourceReading | None
) -> Outcome:
    reading = resources if resources is not None else ResourceReading(note=NO_GATEWAY)
    outcome.measures.update(reading.measures)
    if reading.note:
        notes.append(reading.note)
    if status != OK:
        outcome.drifted = False
    outcome.status = status
    served = plan.production
    outcome.result = _clean(
        {
            "status": status,
            "message": message,
            "notes": notes,
            "model": served.model if served is not None else None,
            "version": served.version if served is not None else None,
            "revision": served.revision if served is not None else None,
            "window": plan.spec.window.to_dict(),
            "min_rows": plan.spec.min_rows,
            "rows": outcome.rows,
            "features": [],
            "drift": None,
            "prediction_drift": None,
            "quality": None,
            **(outcome.result if status == OK else {}),
            "measures": {k: v for k, v in outcome.measures.items() if math.isfinite(v)},
        }
    )
    outcome.measures = dict(outcome.result["measures"])
    return outcome


def _clean(value: Any) -> Any:
    """JSON that every database takes: NaN and infinities become null, NumPy scalars plain numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- 3. record ----------------------------------------------------------------------------------


def record(session: Session, plan: Plan, outcome: Outcome, *, now: int) -> MonitorCheck:
    """Store the check and note the time on the monitor; NotFound when the monitor went meanwhile."""
    monitor = session.get(Monitor, plan.monitor_id)
    if monitor is None:
        raise NotFound(f"the monitor of endpoint {plan.endpoint!r} was deleted while it was being checked")
    check = MonitorCheck(
        monitor_id=plan.monitor_id,
        namespace=plan.namespace,
        window_start=outcome.window_start,
        window_end=outcome.window_end,
        rows=outcome.rows,
        drifted=outcome.drifted,
        result=outcome.result,
        created_at=now,
    )
    session.add(check)
    monitor.last_checked_at = now
    session.flush()
    return check


def run(
    db: Database,
    caller: Caller,
    artifacts: ArtifactStore,
    log_url: str,
    namespace: str,
    endpoint: str,
    *,
    now: int | None = None,
    resources: ResourceReading | MetricsSource | None = None,
) -> MonitorCheck:
    """Check the endpoint now: ``prepare``, ``compute`` and ``record``, each in its own unit of work.

    ``resources`` is a reading already taken (the loop scrapes once per pass), or a source to
    scrape once the caller is known to be allowed to run the check.
    """
    with db.session() as session:
        plan = prepare(session, caller, artifacts, namespace, endpoint)
    reading = resources if isinstance(resources, ResourceReading) else read_resources(resources)
    moment = now if now is not None else now_ms()
    outcome = compute(plan, log_url, now=moment, resources=reading)
    with db.session(write=True) as session:
        return record(session, plan, outcome, now=moment)
