"""ASGI entry point for uvicorn workers: ``uvicorn --factory shipyard.server.asgi:create``.

Settings come from ``SHIPYARD_*`` variables; ``shipyard up`` migrates the store before
starting workers, so workers do not race to migrate.
"""

from __future__ import annotations

from fastapi import FastAPI

from shipyard.runtime import Platform
from shipyard.server.app import create_app
from shipyard.settings import Settings


def create() -> FastAPI:
    return create_app(Platform.open(Settings(), migrate=False))
