"""What platform components need: the desired serving state, and token introspection."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Response, status

from shipyard.access import tokens
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import IntrospectIn
from shipyard.serving import desired

router = APIRouter(tags=["serving"])


@router.get("/serving/desired-state", summary="Every endpoint's current revision, aliases resolved (platform admins)")
def desired_state(
    platform: PlatformDep, caller: CallerDep, if_none_match: Annotated[str | None, Header(max_length=100)] = None
) -> Any:
    with platform.db.session() as session:
        document = desired.build(session, caller)
    etag = f'"{document["etag"]}"'
    if if_none_match is not None and if_none_match.strip().removeprefix("W/") in (etag, document["etag"]):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return Response(orjson.dumps(document), media_type="application/json", headers={"ETag": etag})


@router.post("/tokens:introspect", summary="What a token may do (platform admins, for gateways)")
def introspect_token(body: IntrospectIn, platform: PlatformDep, caller: CallerDep) -> dict[str, object]:
    with platform.db.session() as session:
        return tokens.introspect(session, caller, body.token)
