"""Monitors: how an endpoint's traffic is watched (drift, quality, traffic), and the checks they record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from shipyard.monitoring import checks, monitors
from shipyard.monitoring.config import MonitorConfig
from shipyard.outbound import gateway_metrics
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import Body, Out
from shipyard.serving.gateway.config import GatewayConfig

router = APIRouter(tags=["monitors"])
MONITOR = "/namespaces/{namespace}/endpoints/{endpoint}/monitor"


class WindowIn(Body):
    requests: int | None = Field(default=None, description="The last N logged requests.", examples=[1000])
    seconds: float | None = Field(default=None, description="Those of the last S seconds.", examples=[3600])


class DriftIn(Body):
    method: str = Field(
        default=monitors.AUTO,
        max_length=32,
        description="'auto' (by kind and reference size), or psi, ks, chisquare, jensenshannon, wasserstein for every feature.",
    )
    methods: dict[str, str] = Field(default_factory=dict, description="A method per feature.", examples=[{"age": "ks"}])
    thresholds: dict[str, float] = Field(default_factory=dict, description="A threshold per feature.", examples=[{"age": 0.01}])


class QualityIn(Body):
    missing_rate_increase: float = Field(default=0.05, description="Largest rise of a feature's missing rate (rate points).")
    out_of_range_share: float = Field(default=0.05, description="Largest share of values outside the reference's range.")
    unseen_share: float = Field(default=0.05, description="Largest share of categories the reference never saw.")


class MonitorIn(Body):
    features: list[str] | None = Field(default=None, description="Features to watch; null: all of the reference's.")
    window: WindowIn | None = Field(default=None, description="Default: the last 1000 requests of the last day.")
    drift: DriftIn | None = None
    prediction_drift: bool = True
    quality: QualityIn | None = None
    min_rows: int = Field(default=monitors.DEFAULT_MIN_ROWS, description="Logged instances needed before drift is judged.")
    interval_seconds: float | None = Field(default=None, description="How often the loop checks; null: its own interval.")
    enabled: bool = True


class MonitorOut(Out):
    id: str
    namespace: str
    endpoint: str
    spec: dict[str, Any]
    enabled: bool
    last_checked_at: int | None
    created_at: int
    created_by: str
    updated_at: int


class CheckOut(Out):
    id: int
    namespace: str
    endpoint: str
    window_start: int | None
    window_end: int | None
    rows: int
    drifted: bool
    status: str
    result: dict[str, Any] = Field(description="status, message, notes, features (the drift table), measures, reports.")
    created_at: int


@router.put(MONITOR, response_model=MonitorOut, summary="Create or replace the endpoint's monitor")
def put_monitor(namespace: str, endpoint: str, body: MonitorIn, platform: PlatformDep, caller: CallerDep) -> MonitorOut:
    spec = body.model_dump(exclude={"enabled"}, exclude_none=True)
    with platform.db.session(write=True) as session:
        monitor = monitors.put(session, caller, platform.artifacts, namespace, endpoint, spec, enabled=body.enabled)
        return MonitorOut.model_validate(monitors.describe(monitor, endpoint))


@router.get(MONITOR, response_model=MonitorOut)
def get_monitor(namespace: str, endpoint: str, platform: PlatformDep, caller: CallerDep) -> MonitorOut:
    with platform.db.session() as session:
        return MonitorOut.model_validate(monitors.describe(monitors.get(session, caller, namespace, endpoint), endpoint))


@router.delete(MONITOR, status_code=status.HTTP_204_NO_CONTENT, summary="Delete the monitor and its checks")
def delete_monitor(namespace: str, endpoint: str, platform: PlatformDep, caller: CallerDep) -> Response:
    with platform.db.session(write=True) as session:
        monitors.delete(session, caller, namespace, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(MONITOR + "/check", response_model=CheckOut, status_code=status.HTTP_201_CREATED, summary="Check the endpoint now")
def run_check(namespace: str, endpoint: str, platform: PlatformDep, caller: CallerDep) -> CheckOut:
    log_url = GatewayConfig().resolved_prediction_log_url(platform.settings)
    source = gateway_metrics(MonitorConfig(), platform.settings)
    check = checks.run(platform.db, caller, platform.artifacts, log_url, namespace, endpoint, resources=source)
    return CheckOut.model_validate(monitors.describe_check(check, endpoint))


@router.get(MONITOR + "/checks", response_model=list[CheckOut], summary="The monitor's checks, newest first")
def list_checks(
    namespace: str,
    endpoint: str,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=monitors.MAX_LIST)] = 20,
) -> list[CheckOut]:
    with platform.db.session() as session:
        found = monitors.list_checks(session, caller, namespace, endpoint, limit=limit)
        return [CheckOut.model_validate(monitors.describe_check(c, endpoint)) for c in found]


@router.get("/namespaces/{namespace}/monitors", response_model=list[MonitorOut], summary="The namespace's monitors")
def list_monitors(namespace: str, platform: PlatformDep, caller: CallerDep) -> list[MonitorOut]:
    with platform.db.session() as session:
        return [
            MonitorOut.model_validate(monitors.describe(m, name))
            for m, name in monitors.list_monitors(session, caller, namespace)
        ]
