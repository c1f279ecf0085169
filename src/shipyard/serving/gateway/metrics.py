"""The gateway's Prometheus metrics, summed over its worker processes.

With several uvicorn workers each process counts on its own, so a scrape that reached one
worker would see a fraction of the traffic. ``shipyard gateway`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start; each worker then
writes its values to memory-mapped files there, and ``/metrics`` reads all of them.
Without that variable (one process, as in tests) a private registry is used.

Endpoint labels are set only once the endpoint is known, so requests for made-up names
cannot grow the label set without bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN = ""  # the label value before the endpoint (or model version) is known
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
REQUEST_LABELS = ("namespace", "endpoint", "version", "protocol")


@dataclass(frozen=True, slots=True)
class RouteSeries:
    """The children one (endpoint, model version, protocol) writes to, looked up once."""

    ok: Counter
    latency: Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        # In multiprocess mode values live in files whatever the registry; a private one
        # keeps separate gateways in one process (tests) from colliding by name.
        registry = None if self.multiprocess_dir else CollectorRegistry()
        self._registry = registry
        self.requests = Counter(
            "shipyard_gateway_requests",
            "Prediction requests answered, by endpoint, model version, protocol and HTTP status.",
            (*REQUEST_LABELS, "code"),
            registry=registry,
        )
        self.errors = Counter(
            "shipyard_gateway_request_errors",
            "Prediction requests that failed, by error code (invalid_input, unauthenticated, model_failed, ...).",
            (*REQUEST_LABELS, "error"),
            registry=registry,
        )
        self.latency = Histogram(
            "shipyard_gateway_request_duration_seconds",
            "Time from the request's arrival to its answer, in the gateway.",
            REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "shipyard_gateway_requests_in_flight",
            "Prediction requests being answered right now, over all workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.model_load = Histogram(
            "shipyard_gateway_model_load_seconds",
            "Time to download, check, load and warm a model version before it takes traffic.",
            ("namespace", "model", "version"),
            buckets=LOAD_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "shipyard_gateway_batch_requests",
            "Requests answered together by one model call (adaptive micro-batching).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.logged = Counter(
            "shipyard_gateway_prediction_log_records",
            "Sampled predictions written to the prediction log, and ones dropped because the writer fell behind.",
            ("outcome",),
            registry=registry,
        )
        self._series: dict[tuple[str, str, str, str], RouteSeries] = {}

    def series(self, namespace: str, endpoint: str, version: str, protocol: str) -> RouteSeries:
        key = (namespace, endpoint, version, protocol)
        found = self._series.get(key)
        if found is None:
            found = RouteSeries(self.requests.labels(*key, "200"), self.latency.labels(*key))
            self._series[key] = found
        return found

    def failed(self, namespace: str, endpoint: str, version: str, protocol: str, status: int, error: str, seconds: float) -> None:
        self.requests.labels(namespace, endpoint, version, protocol, str(status)).inc()
        self.errors.labels(namespace, endpoint, version, protocol, error).inc()
        self.latency.labels(namespace, endpoint, version, protocol).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's values."""
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
