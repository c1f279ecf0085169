"""The routing table of one worker, and the thread that keeps it in step with the control plane.

The table is immutable. A poll that brings a new desired state loads and warms every
new model version first, then builds a whole new table and swaps it in by replacing one
reference. A request holds the table (and so its models) it started with until it
answers; models that no table references any more are then dropped by the collector.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.registry.predictor import Predictor
from shipyard.serving.gateway import models
from shipyard.serving.gateway.audience import Audience
from shipyard.serving.gateway.batching import MicroBatcher, call_predictor
from shipyard.serving.gateway.control import ControlPlane
from shipyard.serving.gateway.models import ServedModel

log = logging.getLogger("shipyard.serving.gateway")


@dataclass(frozen=True, slots=True)
class Route:
    served: ServedModel
    weight: int
    upper: float  # cumulative weight: the route takes points in [previous upper, upper)


@dataclass(frozen=True, slots=True)
class ServedEndpoint:
    namespace: str
    name: str
    revision: int
    audience: Audience
    routes: tuple[Route, ...]
    shadow: ServedModel | None = None
    sticky_header: str | None = None  # lower case, as Starlette's headers are looked up

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def pinned(self, version: int) -> ServedModel | None:
        for route in self.routes:
            if route.served.version == version:
                return route.served
        return None


@dataclass(frozen=True, slots=True)
class RoutingTable:
    endpoints: Mapping[tuple[str, str], ServedEndpoint] = field(default_factory=dict)
    etag: str | None = None


def build_routes(served: list[tuple[ServedModel, int]]) -> tuple[Route, ...]:
    """Cumulative bounds on a 0-100 scale, whatever the weights add up to."""
    total = sum(weight for _, weight in served) or 1
    routes: list[Route] = []
    upper = 0.0
    for model, weight in served:
        upper += 100.0 * weight / total
        routes.append(Route(model, weight, upper))
    if routes:  # guard against float rounding leaving a sliver below 100
        routes[-1] = Route(routes[-1].served, routes[-1].weight, 100.0)
    return tuple(routes)


Loaded = tuple[Predictor, MicroBatcher]
ModelKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Batching:
    max_size: int = 32
    max_wait: float = 0.0
    on_batch: Callable[[int], None] | None = None


class StatePoller:
    """Polls the desired state every ``interval`` seconds and swaps in new routing tables.

    ``on_load(namespace, model, version, seconds)`` hears how long each model took to load.
    """

    def __init__(
        self,
        control: ControlPlane,
        interval: float,
        *,
        batching: Batching | None = None,
        on_load: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.control = control
        self.interval = interval
        self.batching = batching or Batching()
        self.on_load = on_load
        self.table = RoutingTable()
        self.ready = threading.Event()
        self._predictors: dict[ModelKey, Loaded] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipyard-gateway-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the control plane may be restarting; keep serving what we have
                log.warning("cannot refresh the desired serving state: %s", exc)
            self._stop.wait(self.interval)

    def poll_once(self) -> bool:
        """One round trip; returns whether a new table was swapped in."""
        document = self.control.desired_state(self.table.etag)
        if document is None:
            self.ready.set()
            return False
        old = self.table.endpoints
        endpoints: dict[tuple[str, str], ServedEndpoint] = {}
        predictors: dict[ModelKey, Loaded] = {}
        complete = True
        for entry in document.get("endpoints", []):
            key = (str(entry["namespace"]), str(entry["name"]))
            try:
                built = self._build(entry, predictors)
            except Exception as exc:
                log.error("cannot load endpoint %s/%s revision %s: %s", *key, entry.get("revision"), exc)
                built = None
            if built is None:
                complete = False
                if key in old:  # keep serving the last revision that loaded
                    endpoints[key] = old[key]
                    for model in _models(old[key]):
                        if model.batcher is not None:
                            predictors[(model.digest, model.onnx_digest)] = (model.predictor, model.batcher)
                continue
            endpoints[key] = built
        self._predictors = predictors
        # Without a complete load the ETag is not kept, so the next poll tries again.
        self.table = RoutingTable(endpoints, str(document.get("etag")) if complete else None)
        self.ready.set()
        return True

    def _build(self, entry: Mapping[str, Any], predictors: dict[ModelKey, Loaded]) -> ServedEndpoint | None:
        namespace = str(entry["namespace"])
        if entry.get("error") or not entry.get("routes"):
            log.error("endpoint %s/%s: %s", namespace, entry["name"], entry.get("error") or "no routes")
            return None
        routed = [(self._served(namespace, r, predictors), int(r.get("weight", 0))) for r in entry["routes"]]
        shadow = entry.get("shadow")
        sticky = entry.get("sticky_header")
        return ServedEndpoint(
            namespace=namespace,
            name=str(entry["name"]),
            revision=int(entry.get("revision", 0)),
            audience=Audience.parse(entry.get("audience")),
            routes=build_routes(routed),
            shadow=self._served(namespace, shadow, predictors) if shadow else None,
            sticky_header=str(sticky).lower() if sticky else None,
        )

    def _served(self, namespace: str, target: Mapping[str, Any], predictors: dict[ModelKey, Loaded]) -> ServedModel:
        key = models.cache_key(target)
        loaded = predictors.get(key) or self._predictors.get(key)
        if loaded is None:
            started = time.perf_counter()
            predictor = models.load(self.control, namespace, target)
            seconds = time.perf_counter() - started
            log.info("loaded %s:%s (%s) for %s in %.2f s", target["model"], target["version"], key[0][:12], namespace, seconds)
            if self.on_load is not None:
                self.on_load(namespace, str(target["model"]), int(target["version"]), seconds)
            batcher = MicroBatcher(
                call_predictor(predictor),
                max_size=self.batching.max_size,
                max_wait=self.batching.max_wait,
                on_batch=self.batching.on_batch,
            )
            loaded = (predictor, batcher)
        predictors[key] = loaded
        return models.served(target, *loaded)


def _models(endpoint: ServedEndpoint) -> list[ServedModel]:
    found = [route.served for route in endpoint.routes]
    return [*found, endpoint.shadow] if endpoint.shadow else found
