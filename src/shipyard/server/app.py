"""The control plane's FastAPI app: ``/api/v1`` behind authentication, RBAC and audit."""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI

from shipyard._version import __version__
from shipyard.runtime import Platform
from shipyard.server import errors
from shipyard.server.middleware import AuditLog, BodyLimit
from shipyard.server.routes import (
    alerts,
    artifacts,
    audit,
    endpoints,
    events,
    experiments,
    feedback,
    health,
    loops,
    models,
    monitors,
    namespaces,
    pipelines,
    profiles,
    queues,
    runs,
    schedules,
    serving,
    tokens,
    users,
)

API_PREFIX = "/api/v1"
ROUTERS = (
    health, namespaces, users, tokens, audit, experiments, runs, artifacts, models, endpoints, serving, pipelines,
    queues, events, schedules, loops, feedback, profiles, monitors, alerts,
)  # fmt: skip

log = logging.getLogger("shipyard.server")


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Shipyard",
        version=__version__,
        summary="Tracking, model registry, tenancy and access control for ML teams.",
        openapi_url="/openapi.json",
    )
    app.state.platform = platform
    app.state.token_touches = {}
    api = APIRouter(prefix=API_PREFIX)
    for module in ROUTERS:
        api.include_router(module.router)
    app.include_router(api)
    errors.install(app)
    # Outermost first on the way in: the audit log must see the size limit's 413 too.
    app.add_middleware(BodyLimit, max_bytes=platform.settings.max_request_bytes)
    app.add_middleware(AuditLog, platform=platform)
    return app
