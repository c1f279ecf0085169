"""FastAPI dependencies: the platform, and the authenticated caller (gate one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipyard.access import tokens
from shipyard.access.caller import Caller
from shipyard.runtime import Platform

bearer = HTTPBearer(auto_error=False, description="An API token: 'shipyard token create' makes one.")


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_caller(
    request: Request,
    platform: Annotated[Platform, Depends(get_platform)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    plaintext = credentials.credentials if credentials is not None else None
    with platform.db.session() as session:
        caller = tokens.authenticate(session, plaintext)
    request.state.caller = caller
    return caller


PlatformDep = Annotated[Platform, Depends(get_platform)]
CallerDep = Annotated[Caller, Depends(get_caller)]
