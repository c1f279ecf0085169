"""API tokens: 32+ random bytes, shown once, stored as a SHA-256 hash, scoped, expiring."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.names import namespace_name
from shipyard.access.roles import ALL_NAMESPACES, INVOKE_PREFIX, Action, Role, invoke_scopes, validate_scopes
from shipyard.errors import InvalidInput, NotFound, NotVisible, PermissionDenied, Unauthenticated
from shipyard.store.models import Principal, RoleBinding, Token, now_ms

TOKEN_PREFIX = "shp_"  # noqa: S105 - a public marker, not a secret
TOKEN_BYTES = 32
DAY_MS = 86_400_000
MAX_TOKEN_DAYS = 3650


def hash_token(plaintext: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: Token
    plaintext: str


def issue(
    session: Session,
    caller: Caller,
    principal: Principal,
    *,
    name: str = "",
    scopes: list[str] | None = None,
    days: int = 90,
    namespace: str = "",
) -> IssuedToken:
    """Create a token for ``principal``; the plaintext exists only in the return value."""
    _require_may_manage(caller, principal)
    if principal.disabled:
        raise InvalidInput(f"principal {principal.name!r} is disabled: enable it before issuing tokens")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"token lifetime {days} days is out of range: expected 1 to {MAX_TOKEN_DAYS}")
    if principal.kind == "service_account":
        namespace = principal.namespace
    wanted = validate_scopes(scopes or ["read", "write"])
    if namespace:
        namespace_name(namespace)
    if invoke_scopes(wanted) and not namespace:
        raise InvalidInput("an invoke:<endpoint> scope names an endpoint of one namespace: pass that namespace too")
    if principal.id == caller.principal_id:
        too_wide = [
            s for s in wanted if s not in caller.scopes and "admin" not in caller.scopes and not s.startswith(INVOKE_PREFIX)
        ]
        if too_wide:
            raise PermissionDenied(f"a token cannot grant scopes its maker lacks: {too_wide}")
        if caller.token_namespace and namespace != caller.token_namespace:
            raise PermissionDenied(
                f"a token limited to namespace {caller.token_namespace!r} can only make tokens limited to it too"
            )
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = Token(
        principal_id=principal.id,
        name=name,
        token_hash=hash_token(plaintext),
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
        scopes=wanted,
        namespace=namespace,
        created_by=caller.name,
        expires_at=now_ms() + days * DAY_MS,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token, plaintext)


def authenticate(session: Session, plaintext: str | None) -> Caller:
    """Turn a bearer token into a Caller, or raise ``Unauthenticated``."""
    if not plaintext:
        raise Unauthenticated("no token given: send 'Authorization: Bearer <token>' (see 'shipyard token create')")
    row = session.execute(
        select(Token, Principal)
        .join(Principal, Principal.id == Token.principal_id)
        .where(Token.token_hash == hash_token(plaintext))
    ).first()
    if row is None:
        raise Unauthenticated("token is not valid: check it was copied whole, or create a new one")
    token, principal = row
    now = now_ms()
    if token.revoked_at is not None:
        raise Unauthenticated(f"token {token.prefix}... was revoked: create a new one")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthenticated(f"token {token.prefix}... has expired: create a new one")
    return caller_of(session, principal, token.scopes, token_namespace=token.namespace, token_id=token.id)


def caller_of(
    session: Session, principal: Principal, scopes: Iterable[str], *, token_namespace: str = "", token_id: str = ""
) -> Caller:
    """``principal`` with its role bindings as they are now, limited to ``scopes``.

    Loops that act for someone (a retraining loop acting as its author) use this, so
    they never hold more rights than that person has today.
    """
    if principal.disabled:
        raise Unauthenticated(f"principal {principal.name!r} is disabled")
    bindings = {
        b.namespace: Role(b.role) for b in session.scalars(select(RoleBinding).where(RoleBinding.principal_id == principal.id))
    }
    return Caller(
        principal_id=principal.id,
        name=display_name(principal),
        kind=principal.kind,
        bindings=bindings,
        scopes=frozenset(scopes),
        token_namespace=token_namespace,
        token_id=token_id,
    )


def touch(session: Session, token_id: str, now: int, *, every_ms: int = 60_000) -> None:
    """Record that a token was used; at most once per ``every_ms`` so reads stay reads."""
    session.execute(
        update(Token)
        .where(Token.id == token_id, or_(Token.last_used_at.is_(None), Token.last_used_at < now - every_ms))
        .values(last_used_at=now)
    )


def display_name(principal: Principal) -> str:
    if principal.kind == "service_account":
        return f"sa:{principal.namespace}/{principal.name}"
    return principal.name


def list_for(session: Session, caller: Caller, principal: Principal) -> list[Token]:
    _require_may_manage(caller, principal)
    return list(session.scalars(select(Token).where(Token.principal_id == principal.id).order_by(Token.created_at)))


def get(session: Session, caller: Caller, token_id: str) -> tuple[Token, Principal]:
    row = session.execute(
        select(Token, Principal).join(Principal, Principal.id == Token.principal_id).where(Token.id == token_id)
    ).first()
    if row is None:
        raise NotFound(f"token {token_id!r} does not exist")
    token, principal = row
    try:
        _require_may_manage(caller, principal)
    except PermissionDenied:
        raise NotVisible(f"token {token_id!r} does not exist") from None
    return token, principal


def revoke(session: Session, caller: Caller, token_id: str) -> Token:
    token, _ = get(session, caller, token_id)
    if token.revoked_at is None:
        token.revoked_at = now_ms()
    return token


def _require_may_manage(caller: Caller, principal: Principal) -> None:
    """Users manage their own tokens; namespace admins those of their service accounts."""
    if caller.is_platform_admin or principal.id == caller.principal_id:
        return
    if principal.kind == "service_account" and caller.can(Action.ADMIN, principal.namespace):
        return
    if caller.bindings.get(ALL_NAMESPACES) == Role.PLATFORM_ADMIN:
        raise PermissionDenied("this token lacks the 'admin' scope needed to manage other principals' tokens")
    raise PermissionDenied(
        f"{caller.name} may not manage tokens of {display_name(principal)}: "
        "only the principal itself, its namespace's admin or a platform admin may"
    )


def introspect(session: Session, caller: Caller, plaintext: str) -> dict[str, object]:
    """What a token may do, for platform components (the gateway) that check callers themselves."""
    caller.require_platform_admin("introspect tokens")
    try:
        subject = authenticate(session, plaintext)
    except Unauthenticated as exc:
        return {"active": False, "reason": exc.message}
    token = session.get(Token, subject.token_id)
    return {
        "active": True,
        "principal": subject.name,
        "kind": subject.kind,
        "roles": {namespace: role.value for namespace, role in subject.bindings.items()},
        "scopes": sorted(subject.scopes),
        "token_namespace": subject.token_namespace,
        "expires_at": token.expires_at if token is not None else None,
    }
