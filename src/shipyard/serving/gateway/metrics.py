"""The gateway's Prometheus metrics, summed over its worker processes.

With several uvicorn workers each process counts on its own, so a scrape that reached one
worker would see a fraction of the traffic. ``shipyard gateway`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start; each worker then
writes its values to memory-mapped files there, and ``/metrics`` reads all of them.
Without that variable (one process, as in tests) a private registry is used.

Endpoint labels are set only once the endpoint is known, so requests for made-up names
cannot grow the label set without bound.

Resource use: each worker publishes its own CPU percent and resident memory as gauges in
``liveall`` mode, so a scrape shows one sample per live worker (label ``pid``) and a dead
worker's values go once the supervisor marks it dead; the monitor sums them. A worker
samples them once a second on a thread of its own (``start_sampling``, so CPU is a
percentage over that second), never per request.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN = ""  # the label value before the endpoint (or model version) is known
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024)
REQUEST_LABELS = ("namespace", "endpoint", "version", "protocol")
CPU_PERCENT = "shipyard_gateway_process_cpu_percent"
RESIDENT_BYTES = "shipyard_gateway_process_resident_memory_bytes"
SAMPLE_SECONDS = 1.0


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
        self.cpu = Gauge(
            CPU_PERCENT,
            "CPU used by each gateway worker process since its previous sample, in percent of one core.",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.memory = Gauge(
            RESIDENT_BYTES,
            "Resident memory of each gateway worker process, in bytes.",
            registry=registry,
            multiprocess_mode="liveall",
        )
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first reading only starts psutil's clock
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None
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

    def sample_resources(self) -> None:
        """Set this process's CPU and memory gauges (a few microseconds: two reads of /proc)."""
        with contextlib.suppress(psutil.Error), self._process.oneshot():  # psutil.Error: /proc could not be read
            self.cpu.set(self._process.cpu_percent(None))
            self.memory.set(self._process.memory_info().rss)

    def start_sampling(self, every: float = SAMPLE_SECONDS) -> None:
        """Sample resource use every ``every`` seconds until ``stop_sampling``."""
        if self._sampler is not None:
            return
        self._sampling.clear()
        self.sample_resources()

        def loop() -> None:
            while not self._sampling.wait(every):
                self.sample_resources()

        self._sampler = threading.Thread(target=loop, name="shipyard-gateway-resources", daemon=True)
        self._sampler.start()

    def stop_sampling(self) -> None:
        self._sampling.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's values."""
        if self._sampler is None:  # no sampler thread (an app without its lifespan): read them now
            self.sample_resources()
        if self._registry is not None:
            return generate_latest(self._registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
