"""Ground truth for an endpoint's predictions, and what it tells: quality per version, A/B tests between versions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from shipyard.errors import InvalidInput
from shipyard.monitoring import ab, feedback, performance
from shipyard.monitoring.window import Window
from shipyard.runtime import Platform
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.store.models import now_ms

router = APIRouter(tags=["monitoring"])
ENDPOINT = "/namespaces/{namespace}/endpoints/{name}"
DEFAULT_REQUESTS = 10_000
MAX_REQUESTS = 1_000_000
MAX_SECONDS = 366 * 86_400

Requests = Annotated[
    int | None, Query(ge=1, le=MAX_REQUESTS, description="The last N logged requests (default 10,000 when no seconds).")
]
Seconds = Annotated[float | None, Query(gt=0, le=MAX_SECONDS, description="The requests of the last S seconds.")]
TaskQuery = Annotated[
    Literal["classification", "regression"] | None, Query(description="Default: from the signature, else the labels.")
]
Positive = Annotated[
    str | None, Query(max_length=1000, description="Positive class of a binary classifier; default the larger label.")
]


class FeedbackIn(BaseModel):
    """One label (``request_id`` and ``label``) or up to 10,000 (``items``)."""

    model_config = ConfigDict(extra="forbid")

    request_id: Any = Field(default=None, description="The X-Request-Id the gateway answered with.", examples=["r-1"])
    label: Any = Field(default=None, description="A number, string or boolean; a list, one per row, for multi-row requests.")
    items: list[Any] | None = Field(default=None, description="[{'request_id': ..., 'label': ...}, ...], at most 10,000.")


class FeedbackAccepted(BaseModel):
    accepted: int = Field(description="Requests that got a label (a repeated request id counts once).")


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    request_id: str
    label: Any
    created_at: int
    created_by: str


class VersionQuality(BaseModel):
    version: int
    task: str | None
    requests: int
    errors: int
    instances: int
    labelled: int
    labelled_requests: int
    metrics: dict[str, Any] | None


class QualityOut(BaseModel):
    namespace: str
    endpoint: str
    model: str | None
    window: dict[str, Any]
    end_ms: int
    requests: int
    labelled: int
    versions: list[VersionQuality]


class ComparisonOut(BaseModel):
    metric: str
    test: str
    a: float | None
    b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    alpha: float
    n_a: int
    n_b: int
    verdict: str


class ABOut(BaseModel):
    namespace: str
    endpoint: str
    model: str | None
    window: dict[str, Any]
    end_ms: int
    a: int
    b: int
    alpha: float
    task: str | None
    requests: dict[str, int]
    quality: ComparisonOut
    latency: ComparisonOut


def _items(body: FeedbackIn) -> list[Any]:
    given = body.model_fields_set
    if body.items is not None:
        if given & {"request_id", "label"}:
            raise InvalidInput("send either {'request_id': ..., 'label': ...} or {'items': [...]}, not both")
        return body.items
    if "request_id" not in given or "label" not in given:
        raise InvalidInput(
            "feedback needs {'request_id': ..., 'label': ...} for one request, or {'items': [...]} for many; "
            f"got fields {sorted(given)}"
        )
    return [{"request_id": body.request_id, "label": body.label}]


def _window(requests: int | None, seconds: float | None) -> Window:
    return Window(requests=DEFAULT_REQUESTS if requests is None and seconds is None else requests, seconds=seconds)


def _log_url(platform: Platform) -> str:
    """Where the gateway writes the prediction log (SHIPYARD_GATEWAY_PREDICTION_LOG_URL, else <home>/predictions)."""
    return GatewayConfig().resolved_prediction_log_url(platform.settings)


def _positive(value: str | None) -> Any:
    """A label from a query string: a whole number or a number where it reads as one, else the text."""
    if value is None:
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


@router.post(ENDPOINT + "/feedback", response_model=FeedbackAccepted, summary="Labels for predictions, by X-Request-Id")
def post_feedback(namespace: str, name: str, body: FeedbackIn, platform: PlatformDep, caller: CallerDep) -> FeedbackAccepted:
    """One ``{request_id, label}`` or ``{items: [...]}`` (up to 10,000, all or none); a later label replaces the earlier."""
    items = _items(body)
    with platform.db.session(write=True) as session:
        return FeedbackAccepted(accepted=feedback.record(session, caller, namespace, name, items))


@router.get(ENDPOINT + "/feedback", response_model=list[FeedbackOut], summary="The endpoint's labels, newest first")
def list_feedback(
    namespace: str,
    name: str,
    platform: PlatformDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=feedback.MAX_LIST)] = 100,
) -> list[FeedbackOut]:
    with platform.db.session() as session:
        return [FeedbackOut.model_validate(f) for f in feedback.list_for(session, caller, namespace, name, limit=limit)]


@router.get(ENDPOINT + "/quality", response_model=QualityOut, summary="Model quality per version over labelled requests")
def get_quality(
    namespace: str,
    name: str,
    platform: PlatformDep,
    caller: CallerDep,
    requests: Requests = None,
    seconds: Seconds = None,
    task: TaskQuery = None,
    positive: Positive = None,
) -> dict[str, Any]:
    window = _window(requests, seconds)
    with platform.db.session() as session:
        return performance.endpoint_quality(
            session, caller, _log_url(platform), namespace, name, window, end_ms=now_ms(), task=task,
            positive=_positive(positive),
        )  # fmt: skip


@router.get(ENDPOINT + "/ab", response_model=ABOut, summary="A/B test of two served versions: quality and latency")
def get_ab(
    namespace: str,
    name: str,
    platform: PlatformDep,
    caller: CallerDep,
    a: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Version A; default the busiest routed version.")] = None,
    b: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Version B; default the next busiest.")] = None,
    requests: Requests = None,
    seconds: Seconds = None,
    alpha: Annotated[float, Query(gt=0, lt=1, description="Significance level.")] = ab.ALPHA,
    task: TaskQuery = None,
) -> dict[str, Any]:
    window = _window(requests, seconds)
    with platform.db.session() as session:
        return ab.endpoint_ab(
            session, caller, _log_url(platform), namespace, name, window, end_ms=now_ms(), a=a, b=b, alpha=alpha, task=task
        )
