"""FastAPI dependencies: the platform, and the authenticated caller (gate one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shipyard.access import tokens
from shipyard.access.caller import Caller
from shipyard.runtime import Platform
from shipyard.store.models import now_ms

bearer = HTTPBearer(auto_error=False, description="An API token: 'shipyard token create' makes one.")


async def get_platform(request: Request) -> Platform:
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
    _note_use(platform, request.app.state.token_touches, caller.token_id)
    return caller


TOUCH_EVERY_MS = 60_000


def _note_use(platform: Platform, touches: dict[str, int], token_id: str) -> None:
    """Keep ``last_used_at`` roughly current without a write on every request.

    ``touches`` (token id -> when this process last recorded a use) lives on the app.
    """
    now = now_ms()
    if now - touches.get(token_id, 0) < TOUCH_EVERY_MS:
        return
    touches[token_id] = now
    with platform.db.session(write=True) as session:
        tokens.touch(session, token_id, now, every_ms=TOUCH_EVERY_MS)


PlatformDep = Annotated[Platform, Depends(get_platform)]
CallerDep = Annotated[Caller, Depends(get_caller)]
