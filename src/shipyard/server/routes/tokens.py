"""API tokens: issue (the secret is in this answer only), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from shipyard.access import principals, tokens
from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput
from shipyard.server.deps import CallerDep, PlatformDep
from shipyard.server.schemas import IssuedTokenOut, TokenIn, TokenOut
from shipyard.store.models import Principal

router = APIRouter(tags=["tokens"])


def _owner(session: Session, caller: Caller, user: str | None, service_account: str | None, namespace: str | None) -> Principal:
    if user is not None and service_account is not None:
        raise InvalidInput("name either 'user' or 'service_account', not both")
    if service_account is not None:
        if not namespace:
            raise InvalidInput("a service account is named with its namespace: pass 'namespace' too")
        return principals.get_service_account(session, caller, namespace, service_account)
    if user is not None:
        return principals.get_user(session, caller, user)
    return principals.get_by_id(session, caller.principal_id)


@router.post(
    "/tokens",
    response_model=IssuedTokenOut,
    status_code=status.HTTP_201_CREATED,
    summary="Issue a token; its secret is shown once",
)
def create_token(body: TokenIn, platform: PlatformDep, caller: CallerDep) -> IssuedTokenOut:
    with platform.db.session(write=True) as session:
        owner = _owner(session, caller, body.user, body.service_account, body.namespace)
        issued = tokens.issue(
            session, caller, owner, name=body.name, scopes=list(body.scopes), days=body.days, namespace=body.namespace or ""
        )
        out = TokenOut.model_validate(issued.token).model_dump()
        return IssuedTokenOut(**out, token=issued.plaintext)


@router.get("/tokens", response_model=list[TokenOut], summary="Tokens of the caller, or of a named principal")
def list_tokens(
    platform: PlatformDep,
    caller: CallerDep,
    user: Annotated[str | None, Query(max_length=255)] = None,
    service_account: Annotated[str | None, Query(max_length=255)] = None,
    namespace: Annotated[str | None, Query(max_length=63)] = None,
) -> list[TokenOut]:
    with platform.db.session() as session:
        owner = _owner(session, caller, user, service_account, namespace)
        return [TokenOut.model_validate(t) for t in tokens.list_for(session, caller, owner)]


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token at once")
def revoke_token(token_id: str, platform: PlatformDep, caller: CallerDep) -> TokenOut:
    with platform.db.session(write=True) as session:
        return TokenOut.model_validate(tokens.revoke(session, caller, token_id))
