"""The gateway's Starlette app: one per worker process, with its own poller and token cache.

URL scheme (every answer carries ``X-Request-Id`` and ``X-Model-Version``):

    POST /v1/namespaces/{ns}/endpoints/{endpoint}:predict       Vertex AI / KServe V1
    POST /v1/models/{ns}.{endpoint}:predict                     KServe V1
    GET  /v1/models/{ns}.{endpoint}                             KServe V1 model status
    POST /v1/namespaces/{ns}/endpoints/{endpoint}/invocations   MLflow scoring
    GET  /v2/health/live, /v2/health/ready                      Open Inference Protocol
    GET  /v2/models/{ns}.{endpoint}[/versions/{v}]              metadata
    GET  /v2/models/{ns}.{endpoint}[/versions/{v}]/ready
    POST /v2/models/{ns}.{endpoint}[/versions/{v}]/infer
    GET  /metrics                                               Prometheus, all workers
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.client import Client
from shipyard.errors import NotFound, PayloadTooLarge, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.serving.gateway import router
from shipyard.serving.gateway.audience import Identity, TokenCache, authorize
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.control import ControlPlane, ControlPlaneUnavailable, SdkControlPlane
from shipyard.serving.gateway.metrics import UNKNOWN, GatewayMetrics
from shipyard.serving.gateway.models import ServedModel
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from shipyard.serving.gateway.protocols import mlflow, v1, v2
from shipyard.serving.gateway.state import Batching, ServedEndpoint, StatePoller
from shipyard.serving.gateway.validation import Payload, to_matrix
from shipyard.settings import Settings

log = logging.getLogger("shipyard.serving.gateway")

JSON_TYPE = "application/json"
CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"
NO_MODEL = "none"
STARTUP_WAIT_S = 30.0  # past it, a worker starts anyway and keeps polling
INLINE_ROWS = 64
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ModelFailed(ShipyardError):
    status_code = 500
    code = "model_failed"


class Gateway:
    """Request handling for one worker; the routing table lives in ``poller.table``."""

    def __init__(self, control: ControlPlane, config: GatewayConfig, prediction_log: PredictionLog | None = None) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        batching = Batching(config.batch_max_size, config.batch_max_wait_ms / 1000.0, self.metrics.batch_size.observe)
        self.poller = StatePoller(control, config.poll_seconds, batching=batching, on_load=self._loaded)
        self.tokens = TokenCache(control.introspect_token, config.token_ttl_seconds)
        self._lookups: dict[str, asyncio.Future[Identity]] = {}
        self.prediction_log = prediction_log
        self.log_rate = config.prediction_log_rate if prediction_log is not None else 0.0
        if prediction_log is not None:
            prediction_log.on_written = self._logged

    def _sampled(self) -> bool:
        return self.log_rate > 0 and random.random() < self.log_rate  # noqa: S311 (sampling, not secrecy)

    def _logged(self, written: int, dropped: int) -> None:
        self.metrics.logged.labels("written").inc(written)
        self.metrics.logged.labels("dropped").inc(dropped)

    def _loaded(self, namespace: str, model: str, version: int, seconds: float) -> None:
        self.metrics.model_load.labels(namespace, model, str(version)).observe(seconds)

    # -- routes -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        model = "/v2/models/{model}"
        pinned = model + "/versions/{version:int}"
        return [
            Route("/v1/namespaces/{namespace}/endpoints/{endpoint}:predict", self.v1_predict, methods=["POST"]),
            Route("/v1/namespaces/{namespace}/endpoints/{endpoint}/invocations", self.invocations, methods=["POST"]),
            Route("/v1/models/{model}:predict", self.v1_model_predict, methods=["POST"]),
            Route("/v1/models/{model}", self.v1_model_status, methods=["GET"]),
            Route("/v2/health/live", self.live, methods=["GET"]),
            Route("/v2/health/ready", self.ready, methods=["GET"]),
            Route(model, self.v2_metadata, methods=["GET"]),
            Route(pinned, self.v2_metadata, methods=["GET"]),
            Route(model + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(pinned + "/ready", self.v2_model_ready, methods=["GET"]),
            Route(model + "/infer", self.v2_infer, methods=["POST"]),
            Route(pinned + "/infer", self.v2_infer, methods=["POST"]),
            Route("/metrics", self.scrape, methods=["GET"]),
        ]

    async def v1_predict(self, request: Request) -> Response:
        params = request.path_params
        return await self._predict(request, params["namespace"], params["endpoint"], "v1")

    async def v1_model_predict(self, request: Request) -> Response:
        namespace, name = _model_name(request.path_params["model"])
        return await self._predict(request, namespace, name, "v1")

    async def invocations(self, request: Request) -> Response:
        params = request.path_params
        return await self._predict(request, params["namespace"], params["endpoint"], "mlflow")

    async def v2_infer(self, request: Request) -> Response:
        namespace, name = _model_name(request.path_params["model"])
        return await self._predict(request, namespace, name, "v2", request.path_params.get("version"))

    async def live(self, request: Request) -> Response:
        return _json({"live": True}, 200, _request_id(request), NO_MODEL)

    async def ready(self, request: Request) -> Response:
        ready = self.poller.ready.is_set()
        return _json({"ready": ready}, 200 if ready else 503, _request_id(request), NO_MODEL)

    async def scrape(self, request: Request) -> Response:
        """Prometheus metrics: platform admins only (labels name every endpoint) unless SHIPYARD_GATEWAY_METRICS_PUBLIC."""
        request_id = _request_id(request)
        if not self.config.metrics_public:
            try:
                identity = await self._identity(request)
                if identity is None or not identity.usable(int(time.time() * 1000)):
                    raise Unauthenticated("/metrics needs a platform admin's token: send 'Authorization: Bearer <token>'")
                if not identity.platform_admin:
                    raise PermissionDenied("/metrics shows every namespace's endpoints: it needs a platform admin's token")
            except ShipyardError as exc:
                return _error(exc, request_id, NO_MODEL)
        body = await run_in_threadpool(self.metrics.render)
        return Response(body, 200, _headers(request_id, NO_MODEL), media_type=CONTENT_TYPE_METRICS)

    async def v1_model_status(self, request: Request) -> Response:
        request_id = _request_id(request)
        try:
            _, served = await self._resolve(request, request.path_params["model"], None)
        except ShipyardError as exc:
            return _error(exc, request_id, NO_MODEL)
        return _json({"name": request.path_params["model"], "ready": True}, 200, request_id, served.label)

    async def v2_model_ready(self, request: Request) -> Response:
        request_id = _request_id(request)
        try:
            _, served = await self._resolve(request, request.path_params["model"], request.path_params.get("version"))
        except ShipyardError as exc:
            return _error(exc, request_id, NO_MODEL, v2_style=True)
        return _json({"name": request.path_params["model"], "ready": True}, 200, request_id, served.label)

    async def v2_metadata(self, request: Request) -> Response:
        request_id = _request_id(request)
        name = request.path_params["model"]
        try:
            endpoint, served = await self._resolve(request, name, request.path_params.get("version"))
        except ShipyardError as exc:
            return _error(exc, request_id, NO_MODEL, v2_style=True)
        versions = sorted({route.served.version for route in endpoint.routes})
        body = v2.metadata(name, served, versions)
        return Response(body, 200, _headers(request_id, served.label), media_type=JSON_TYPE)

    # -- the hot path -------------------------------------------------------------

    async def _predict(self, request: Request, namespace: str, name: str, protocol: str, version: int | None = None) -> Response:
        started = time.perf_counter()
        request_id = _request_id(request)
        sampled = self._sampled()
        endpoint: ServedEndpoint | None = None
        served: ServedModel | None = None
        rows: np.ndarray[Any, Any] | None = None
        in_flight = self.metrics.in_flight
        in_flight.inc()
        try:
            endpoint = await self._endpoint(request, namespace, name)
            served = self._pick(endpoint, request, version)
            body = await self._body(request)
            infer: v2.InferRequest | None = None
            payload: Payload
            if protocol == "v2":
                infer = v2.parse(body, request.headers.get(v2.HEADER_LENGTH))
                payload = infer.payload
            else:
                payload = v1.parse(body) if protocol == "v1" else mlflow.parse(body)
            rows = to_matrix(payload, served.schema)
            # A logged request keeps its class probabilities where they cost no extra model call.
            with_proba = infer is not None or (sampled and served.free_proba)
            predictions, probabilities = await _run(served, rows, with_proba=with_proba)
        except ShipyardError as exc:
            self._failed(exc, request_id, protocol, endpoint, served, rows, started, sampled)
            return _error(exc, request_id, served.label if served else NO_MODEL, v2_style=protocol == "v2")
        finally:
            in_flight.dec()
        label = served.label
        headers = _headers(request_id, label)
        if infer is not None:
            content, header_length = v2.render(infer, f"{namespace}.{name}", served, predictions, probabilities)
            if header_length is not None:
                headers["Inference-Header-Content-Length"] = str(header_length)
        elif protocol == "v1":
            content = v1.render(predictions, label, f"{endpoint.key}@{endpoint.revision}")
        else:
            content = mlflow.render(predictions)
        seconds = time.perf_counter() - started
        series = self.metrics.series(namespace, name, label, protocol)
        series.ok.inc()
        series.latency.observe(seconds)
        if sampled:
            self._record(request_id, protocol, endpoint, served, 200, seconds, rows, predictions, None, probabilities)
        task = None
        if endpoint.shadow is not None:
            task = BackgroundTask(router.run_shadow, endpoint, endpoint.shadow, rows, request_id, label)
        return Response(content, 200, headers, media_type=JSON_TYPE, background=task)

    def _failed(
        self,
        exc: ShipyardError,
        request_id: str,
        protocol: str,
        endpoint: ServedEndpoint | None,
        served: ServedModel | None,
        rows: np.ndarray[Any, Any] | None,
        started: float,
        sampled: bool,
    ) -> None:
        seconds = time.perf_counter() - started
        # Only endpoints that exist get their own label values: made-up names must not grow the series.
        namespace, name = (endpoint.namespace, endpoint.name) if endpoint is not None else (UNKNOWN, UNKNOWN)
        label = served.label if served is not None else UNKNOWN
        self.metrics.failed(namespace, name, label, protocol, exc.status_code, exc.code, seconds)
        if endpoint is not None and sampled:
            self._record(request_id, protocol, endpoint, served, exc.status_code, seconds, rows, None, exc.message)

    def _record(
        self,
        request_id: str,
        protocol: str,
        endpoint: ServedEndpoint,
        served: ServedModel | None,
        status: int,
        seconds: float,
        rows: np.ndarray[Any, Any] | None,
        outputs: list[Any] | None,
        error: str | None,
        probabilities: list[list[float]] | None = None,
    ) -> None:
        assert self.prediction_log is not None
        self.prediction_log.add(
            PredictionRecord(
                request_id=request_id,
                timestamp_ms=int(time.time() * 1000),
                namespace=endpoint.namespace,
                endpoint=endpoint.name,
                revision=endpoint.revision,
                model=served.model if served is not None else None,
                version=served.version if served is not None else None,
                protocol=protocol,
                status=status,
                latency_ms=seconds * 1000.0,
                inputs=rows,
                outputs=outputs,
                error=error,
                probabilities=probabilities,
            )
        )

    async def _resolve(self, request: Request, model: str, version: int | None) -> tuple[ServedEndpoint, ServedModel]:
        namespace, name = _model_name(model)
        endpoint = await self._endpoint(request, namespace, name)
        if version is not None:
            return endpoint, self._pick(endpoint, request, version)
        return endpoint, endpoint.routes[0].served

    async def _endpoint(self, request: Request, namespace: str, name: str) -> ServedEndpoint:
        """The endpoint, if the caller is in its audience: 401, 403 or 404 otherwise."""
        endpoint = self.poller.table.endpoints.get((namespace, name))
        if endpoint is not None and endpoint.audience.anonymous:
            return endpoint
        identity = await self._identity(request)
        if endpoint is None:
            # Without a valid token, unknown and protected endpoints look alike.
            if identity is None or not identity.usable(int(time.time() * 1000)):
                raise Unauthenticated("this endpoint needs a valid token: send 'Authorization: Bearer <token>'")
            raise NotFound(f"endpoint {namespace}/{name} not found, or not serving yet")
        authorize(namespace, name, endpoint.audience, identity)
        return endpoint

    async def _identity(self, request: Request) -> Identity | None:
        token = _bearer(request)
        if token is None:
            return None
        identity = self.tokens.cached(token)
        if identity is not None:
            return identity
        # One control-plane round trip per token, however many requests are waiting on it.
        pending = self._lookups.get(token)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(self.tokens.lookup, token))
            self._lookups[token] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(token, None))
        try:
            return await asyncio.shield(pending)
        except ShipyardError as exc:
            log.warning("token check failed: %s", exc)
            raise ControlPlaneUnavailable("cannot check the token with the control plane right now: retry shortly") from exc

    @staticmethod
    def _pick(endpoint: ServedEndpoint, request: Request, version: int | None) -> ServedModel:
        if version is not None:
            pinned = endpoint.pinned(version)
            if pinned is None:
                served = ", ".join(str(r.served.version) for r in endpoint.routes)
                raise NotFound(f"endpoint {endpoint.key} does not serve version {version}: it serves {served}")
            return pinned
        sticky = request.headers.get(endpoint.sticky_header) if endpoint.sticky_header else None
        return router.choose(endpoint, sticky)

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is {declared} bytes: the limit is {limit} (SHIPYARD_GATEWAY_MAX_BODY_BYTES)")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"the body is over {limit} bytes (SHIPYARD_GATEWAY_MAX_BODY_BYTES): send fewer rows")
            chunks.append(chunk)
        return b"".join(chunks)


Answer = tuple[list[Any], list[list[float]] | None]


async def _run(served: ServedModel, rows: np.ndarray[Any, Any], *, with_proba: bool) -> Answer:
    def predict() -> Answer:
        if with_proba:
            return served.predictor.predict_with_proba(rows)
        return served.predictor.predict(rows), None

    try:
        if len(rows) > INLINE_ROWS:  # big requests predict in a thread, so the event loop keeps serving
            return await run_in_threadpool(predict)
        if served.batcher is not None:
            return await served.batcher.predict(rows, with_proba)
        return predict()
    except ShipyardError:
        raise
    except Exception as exc:
        log.exception("model %s failed", served.label)
        raise ModelFailed(f"model {served.label} failed on {len(rows)} row(s): {type(exc).__name__}") from exc


# -- small helpers --------------------------------------------------------------------


def _model_name(model: str) -> tuple[str, str]:
    """``{ns}.{endpoint}``: namespace names cannot hold a dot, so the first one splits."""
    namespace, dot, name = model.partition(".")
    if not dot or not namespace or not name:
        raise NotFound(f"model {model!r} not found: name it <namespace>.<endpoint>")
    return namespace, name


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    return given if given is not None and _REQUEST_ID.match(given) else os.urandom(16).hex()


def _headers(request_id: str, model_version: str) -> dict[str, str]:
    return {"X-Request-Id": request_id, "X-Model-Version": model_version}


def _json(body: Any, status: int, request_id: str, model_version: str) -> Response:
    return Response(orjson.dumps(body), status, _headers(request_id, model_version), media_type=JSON_TYPE)


def _error(exc: ShipyardError, request_id: str, model_version: str, *, v2_style: bool = False) -> Response:
    # The Open Inference Protocol's clients show "error" as the message, so it carries both there.
    body = {"error": f"{exc.code}: {exc.message}" if v2_style else exc.code, "message": exc.message}
    return _json(body, exc.status_code, request_id, model_version)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
    message = f"no route for {request.method} {request.url.path}: see the gateway's URL scheme in the README"
    return _json({"error": code, "message": message}, status, _request_id(request), NO_MODEL)


def create_app(
    control: ControlPlane,
    config: GatewayConfig | None = None,
    *,
    poll: bool = True,
    prediction_log: PredictionLog | None = None,
) -> Starlette:
    """The app; with ``poll`` a background thread keeps its routing table current."""
    gateway = Gateway(control, config or GatewayConfig(), prediction_log)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if prediction_log is not None:
            prediction_log.start()
        gateway.metrics.start_sampling()
        if poll:
            gateway.poller.start()
            # Take no request before the first table is in, so no worker answers 404 for a deployed endpoint.
            await run_in_threadpool(gateway.poller.ready.wait, STARTUP_WAIT_S)
        # What start-up loaded (libraries, models) lives as long as the worker: keep it out of
        # the collector's full passes, whose pauses would otherwise show in tail latency.
        gc.freeze()
        try:
            yield
        finally:
            gateway.metrics.stop_sampling()
            gateway.poller.stop()
            if prediction_log is not None:
                await run_in_threadpool(prediction_log.close)

    app = Starlette(routes=gateway.routes(), lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.gateway = gateway
    return app


def create() -> Starlette:
    """uvicorn's factory: reads ``SHIPYARD_URL`` and the gateway settings in each worker."""
    config = GatewayConfig()
    if not logging.getLogger("shipyard").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
        logging.getLogger("shipyard").addHandler(handler)
        logging.getLogger("shipyard").setLevel(logging.INFO)
    token = config.token_file.read_text().strip() if config.token_file is not None else None
    control = SdkControlPlane(Client(token=token, retries=1))
    prediction_log = None
    if config.prediction_log_rate > 0:
        url = config.resolved_prediction_log_url(Settings())
        prediction_log = PredictionLog(url, flush_seconds=config.prediction_log_flush_seconds)
    return create_app(control, config, prediction_log=prediction_log)
