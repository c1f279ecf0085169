"""Monitors: desired state that says how an endpoint's traffic is watched.

A monitor belongs to one endpoint. Its spec, as data (every field has a default)::

    {"features": ["age", "income"],          # or null: every input column of the reference profile
     "window": {"requests": 1000, "seconds": 86400},
     "drift": {"method": "auto",             # or one method for every feature it applies to
               "methods": {"age": "ks"},     # per feature: psi, ks, chisquare, jensenshannon, wasserstein
               "thresholds": {"age": 0.01}}, # per feature; default: the method's own
     "prediction_drift": true,
     "quality": {"missing_rate_increase": 0.05, "out_of_range_share": 0.05, "unseen_share": 0.05},
     "min_rows": 100,                        # fewer logged instances: the check judges nothing
     "interval_seconds": null}               # null: the loop's SHIPYARD_MONITOR_INTERVAL_S

The reference is the profile stored with the endpoint's production version (the route with
the largest weight of the current revision). ``checks`` runs a monitor; the loop
(``loop``) runs every enabled monitor on its interval. Reading needs read access to the
namespace, changing needs write access.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.artifacts import ArtifactStore
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import reference
from shipyard.monitoring.drift import detect_drift
from shipyard.monitoring.methods import METHODS
from shipyard.monitoring.profile import Profile
from shipyard.monitoring.quality import QualityThresholds
from shipyard.monitoring.window import Window
from shipyard.serving import endpoints, revisions
from shipyard.store.models import Endpoint, ModelAlias, Monitor, MonitorCheck, RegisteredModel, now_ms

AUTO = "auto"
PREDICTION = "prediction"  # the reference profile's column of model outputs, and the window's
DEFAULT_WINDOW = Window(requests=1000, seconds=86_400.0)
DEFAULT_MIN_ROWS = 100
MAX_FEATURES = 1000
MAX_WINDOW_REQUESTS = 1_000_000
MAX_WINDOW_SECONDS = 90 * 86_400.0
MAX_LIST = 1000
SPEC_FIELDS = ("features", "window", "drift", "prediction_drift", "quality", "min_rows", "interval_seconds")


# -- the spec ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftSpec:
    """Which test each feature gets: ``method`` for all ("auto": by kind and reference size), overrides per feature."""

    method: str = AUTO
    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> DriftSpec:
        data = _mapping(data, "drift", "{'method': 'auto', 'methods': {'age': 'ks'}, 'thresholds': {'age': 0.01}}")
        _known("drift", data, ("method", "methods", "thresholds"))
        method = data.get("method", AUTO)
        if method != AUTO and method not in METHODS:
            raise InvalidInput(f"drift method {method!r} is unknown: expected 'auto' or one of {', '.join(sorted(METHODS))}")
        methods = _mapping(data.get("methods"), "drift.methods", "{'age': 'ks'}")
        for feature, name in methods.items():
            _feature(feature, "drift.methods")
            if name not in METHODS:
                raise InvalidInput(
                    f"drift method {name!r} for feature {feature!r} is unknown: expected one of {', '.join(sorted(METHODS))}"
                )
        thresholds = _mapping(data.get("thresholds"), "drift.thresholds", "{'age': 0.01}")
        for feature, value in thresholds.items():
            _feature(feature, "drift.thresholds")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise InvalidInput(
                    f"drift threshold for feature {feature!r} must be a positive number (a p-value for ks and chisquare, "
                    f"a distance for the others); got {value!r}"
                )
        return cls(method=str(method), methods=dict(methods), thresholds={k: float(v) for k, v in thresholds.items()})

    def methods_for(self, reference: Profile, features: list[str]) -> dict[str, str]:
        """Per-feature methods: the overrides, then ``method`` where it applies to the feature's kind."""
        chosen = {name: method for name, method in self.methods.items() if name in features}
        if self.method != AUTO:
            kinds = METHODS[self.method].kinds
            for name in features:
                column = reference.columns.get(name)
                if name not in chosen and column is not None and column.kind in kinds:
                    chosen[name] = self.method
        return chosen

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "methods": dict(self.methods), "thresholds": dict(self.thresholds)}


@dataclass(frozen=True)
class MonitorSpec:
    features: tuple[str, ...] | None = None  # None: every input column of the reference profile
    window: Window = DEFAULT_WINDOW
    drift: DriftSpec = field(default_factory=DriftSpec)
    prediction_drift: bool = True
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    min_rows: int = DEFAULT_MIN_ROWS
    interval_seconds: float | None = None

    @classmethod
    def from_dict(cls, data: Any) -> MonitorSpec:
        """A checked spec; every error says which field, what was expected and what was got."""
        data = _mapping(data, "monitor spec", "{'features': ['age'], 'window': {'requests': 1000}}")
        _known("monitor spec", data, SPEC_FIELDS)
        features = data.get("features")
        if features is not None:
            if isinstance(features, str) or not isinstance(features, list | tuple) or not features:
                raise InvalidInput(
                    f"features must be a non-empty list of feature names, or null for all of the reference's; got {features!r}"
                )
            if len(features) > MAX_FEATURES:
                raise InvalidInput(f"features lists {len(features)} names: at most {MAX_FEATURES}")
            for name in features:
                _feature(name, "features")
            if len(set(features)) != len(features):
                raise InvalidInput(f"features names {sorted({f for f in features if features.count(f) > 1})} more than once")
            if PREDICTION in features:
                raise InvalidInput(f"{PREDICTION!r} is the model's output, not a feature: watch it with prediction_drift")
        drift = DriftSpec.from_dict(data.get("drift"))
        if features is not None:
            strays = sorted(name for name in {*drift.methods, *drift.thresholds} if name not in features)
            if strays:
                raise InvalidInput(f"drift overrides name {strays}, which are not among features {list(features)}")
        prediction_drift = data.get("prediction_drift", True)
        if not isinstance(prediction_drift, bool):
            raise InvalidInput(f"prediction_drift is true or false; got {prediction_drift!r}")
        quality = _mapping(data.get("quality"), "quality", "{'missing_rate_increase': 0.05}")
        _known("quality", quality, ("missing_rate_increase", "out_of_range_share", "unseen_share"))
        min_rows = data.get("min_rows", DEFAULT_MIN_ROWS)
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or not 1 <= min_rows <= MAX_WINDOW_REQUESTS:
            raise InvalidInput(
                f"min_rows must be a whole number from 1 to {MAX_WINDOW_REQUESTS} (logged instances needed before "
                f"drift is judged); got {min_rows!r}"
            )
        interval = data.get("interval_seconds")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or not 1 <= interval <= 86_400
        ):
            raise InvalidInput(f"interval_seconds must lie in [1, 86400] seconds, or be null for the loop's; got {interval!r}")
        return cls(
            features=tuple(features) if features is not None else None,
            window=_window(data.get("window")),
            drift=drift,
            prediction_drift=prediction_drift,
            quality=QualityThresholds(**quality),
            min_rows=min_rows,
            interval_seconds=float(interval) if interval is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features) if self.features is not None else None,
            "window": self.window.to_dict(),
            "drift": self.drift.to_dict(),
            "prediction_drift": self.prediction_drift,
            "quality": asdict(self.quality),
            "min_rows": self.min_rows,
            "interval_seconds": self.interval_seconds,
        }

    def features_in(self, reference: Profile) -> list[str]:
        """The features to compare: those named, or every input column of the reference."""
        if self.features is not None:
            return list(self.features)
        return [name for name in reference.columns if name != PREDICTION]

    def check_against(self, reference: Profile) -> None:
        """Fail now, not at the first check, on features or overrides the reference cannot take."""
        features = self.features_in(reference)
        unknown = [name for name in features if name not in reference.columns]
        if unknown:
            inputs = [name for name in reference.columns if name != PREDICTION]
            raise InvalidInput(
                f"features {unknown} are not in the reference profile of the production version; expected some of "
                f"{', '.join(inputs)}",
                details={"unknown": unknown},
            )
        strays = sorted(name for name in {*self.drift.methods, *self.drift.thresholds} if name not in features)
        if strays:
            raise InvalidInput(f"drift overrides name {strays}, which are not compared; expected some of {', '.join(features)}")
        # A comparison of the reference with itself runs every check on the overrides (kinds, threshold ranges).
        detect_drift(
            reference,
            reference,
            columns=features,
            methods=self.drift.methods_for(reference, features),
            thresholds=dict(self.drift.thresholds),
        )


def _mapping(value: Any, what: str, example: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} is a {type(value).__name__}: expected a JSON object such as {example}")
    return dict(value)


def _known(what: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(f"{what} fields {unknown} are unknown: expected some of {', '.join(allowed)}")


def _feature(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise InvalidInput(f"{what}: feature name {name!r} is not valid: expected a column name of 1-255 characters")
    return name


def _window(value: Any) -> Window:
    if value is None:
        return DEFAULT_WINDOW
    data = _mapping(value, "window", "{'requests': 1000, 'seconds': 3600}")
    requests, seconds = data.get("requests"), data.get("seconds")
    if requests is not None and (
        isinstance(requests, bool) or not isinstance(requests, int) or not 1 <= requests <= MAX_WINDOW_REQUESTS
    ):
        raise InvalidInput(f"window requests must be a whole number from 1 to {MAX_WINDOW_REQUESTS}; got {requests!r}")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_WINDOW_SECONDS
    ):
        raise InvalidInput(f"window seconds must be a number in (0, {MAX_WINDOW_SECONDS:g}]; got {seconds!r}")
    return Window.from_dict(data)


# -- what an endpoint serves ----------------------------------------------------------------------


@dataclass(frozen=True)
class Production:
    """The version that takes most of an endpoint's traffic in its current revision."""

    model: str
    version: int
    revision: int


def production(session: Session, endpoint: Endpoint) -> Production | None:
    """The route with the largest weight of the current revision (the first of equals), aliases resolved."""
    revision = revisions.current(session, endpoint)
    if revision is None or not revision.routes:
        return None
    route = max(revision.routes, key=lambda r: int(r.get("weight", 0)))  # max keeps the first of equal weights
    number = route.get("version")
    if number is None:
        model = session.scalar(
            select(RegisteredModel).where(RegisteredModel.namespace == endpoint.namespace, RegisteredModel.name == route["model"])
        )
        alias = session.get(ModelAlias, (model.id, route.get("alias"))) if model is not None else None
        if alias is None:
            return None
        number = alias.version
    return Production(model=str(route["model"]), version=int(number), revision=revision.revision)


def reference_of(session: Session, artifacts: ArtifactStore, endpoint: Endpoint) -> tuple[Production | None, Profile | None]:
    """The production version and its reference profile (None where it has none)."""
    served = production(session, endpoint)
    if served is None:
        return None, None
    try:
        return served, reference.profile_of(session, artifacts, endpoint.namespace, served.model, served.version)
    except NotFound:
        return served, None


# -- records ----------------------------------------------------------------------------------


def put(
    session: Session,
    caller: Caller,
    artifacts: ArtifactStore,
    namespace: str,
    endpoint: str,
    spec: Mapping[str, Any] | None,
    *,
    enabled: bool = True,
    now: int | None = None,
) -> Monitor:
    """Create the endpoint's monitor or replace its spec; checked against the reference where there is one."""
    caller.require(Action.WRITE, namespace)
    target = endpoints.get(session, caller, namespace, endpoint)
    clean = MonitorSpec.from_dict(spec or {})
    _, profile = reference_of(session, artifacts, target)
    if profile is not None:
        clean.check_against(profile)
    moment = now if now is not None else now_ms()
    monitor = _find(session, target)
    if monitor is None:
        monitor = Monitor(namespace=namespace, endpoint_id=target.id, created_at=moment, created_by=caller.name)
        session.add(monitor)
    monitor.spec = clean.to_dict()
    monitor.enabled = bool(enabled)
    monitor.last_checked_at = None  # a new spec is checked at the loop's next pass
    monitor.updated_at = moment
    session.flush()
    return monitor


def _find(session: Session, endpoint: Endpoint) -> Monitor | None:
    return session.scalar(select(Monitor).where(Monitor.endpoint_id == endpoint.id))


def get(session: Session, caller: Caller, namespace: str, endpoint: str) -> Monitor:
    target = endpoints.get(session, caller, namespace, endpoint)
    monitor = _find(session, target)
    if monitor is None:
        raise NotFound(
            f"endpoint {endpoint!r} in namespace {namespace!r} has no monitor: set one with "
            f"'shipyard monitor set {endpoint}' (PUT .../endpoints/{endpoint}/monitor)"
        )
    return monitor


def delete(session: Session, caller: Caller, namespace: str, endpoint: str) -> None:
    """Delete the monitor and its checks; alert rules on the endpoint stay, and wait for a new monitor."""
    caller.require(Action.WRITE, namespace)
    monitor = get(session, caller, namespace, endpoint)
    session.delete(monitor)
    session.flush()


def list_monitors(session: Session, caller: Caller, namespace: str) -> list[tuple[Monitor, str]]:
    """(monitor, endpoint name) for every monitor of the namespace, by endpoint name."""
    namespaces.require_exists(session, caller, namespace, Action.READ)
    rows = session.execute(
        select(Monitor, Endpoint.name)
        .join(Endpoint, Endpoint.id == Monitor.endpoint_id)
        .where(Monitor.namespace == namespace)
        .order_by(Endpoint.name)
    ).all()
    return [(monitor, name) for monitor, name in rows]


def list_checks(session: Session, caller: Caller, namespace: str, endpoint: str, *, limit: int = 20) -> list[MonitorCheck]:
    """The monitor's checks, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit {limit!r} is not valid: expected a whole number from 1 to {MAX_LIST}")
    monitor = get(session, caller, namespace, endpoint)
    query = select(MonitorCheck).where(MonitorCheck.monitor_id == monitor.id).order_by(MonitorCheck.id.desc()).limit(limit)
    return list(session.scalars(query))


def describe(monitor: Monitor, endpoint: str) -> dict[str, Any]:
    """The monitor as the API shows it."""
    return {
        "id": monitor.id,
        "namespace": monitor.namespace,
        "endpoint": endpoint,
        "spec": dict(monitor.spec),
        "enabled": monitor.enabled,
        "last_checked_at": monitor.last_checked_at,
        "created_at": monitor.created_at,
        "created_by": monitor.created_by,
        "updated_at": monitor.updated_at,
    }


def describe_check(check: MonitorCheck, endpoint: str) -> dict[str, Any]:
    return {
        "id": check.id,
        "namespace": check.namespace,
        "endpoint": endpoint,
        "window_start": check.window_start,
        "window_end": check.window_end,
        "rows": check.rows,
        "drifted": check.drifted,
        "status": (check.result or {}).get("status", ""),
        "result": dict(check.result or {}),
        "created_at": check.created_at,
    }
