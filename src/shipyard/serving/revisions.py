"""Deployment revisions: every change to an endpoint is a new, immutable revision.

A revision routes traffic by weight to model versions (named by number, or by alias so
the endpoint follows the alias as it moves), may copy requests to a shadow version, and
says how many replicas serve it. Rollback makes a new revision equal to the one before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.registry import aliases, models
from shipyard.serving import endpoints
from shipyard.store.models import Endpoint, EndpointRevision, now_ms

MAX_ROUTES = 10
MAX_REPLICAS = 64
REASONS = ("deploy", "traffic", "scale", "rollback")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,255}$")


class Keep(Enum):
    """Marks a field that a change leaves as the current revision has it."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass
class RevisionSpec:
    """What a revision serves. ``routes``: [{"model", "version" | "alias", "weight"}]."""

    routes: list[dict[str, Any]]
    shadow: dict[str, Any] | None = None
    replicas_min: int = 1
    replicas_max: int = 1
    sticky_header: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _target(session: Session, caller: Caller, namespace: str, entry: Any, what: str) -> dict[str, Any]:
    """Check a model reference exists; keep it by version number or by alias."""
    if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
        raise InvalidInput(
            f"{what} {entry!r} is not valid: expected {{'model': name, 'version': n}} or {{'model': name, 'alias': a}}"
        )
    version, alias = entry.get("version"), entry.get("alias")
    if (version is None) == (alias is None):
        raise InvalidInput(f"{what} for model {entry['model']!r} names neither or both of version and alias: name exactly one")
    if alias is not None:
        aliases.resolve(session, caller, namespace, entry["model"], str(alias))
        return {"model": entry["model"], "alias": str(alias)}
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"{what} version {version!r} is not a whole number")
    models.get_version(session, caller, namespace, entry["model"], version)
    return {"model": entry["model"], "version": version}


def validate(session: Session, caller: Caller, namespace: str, spec: RevisionSpec) -> RevisionSpec:
    if not 1 <= len(spec.routes) <= MAX_ROUTES:
        raise InvalidInput(f"a revision routes to 1 to {MAX_ROUTES} model versions, got {len(spec.routes)}")
    routes: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for entry in spec.routes:
        target = _target(session, caller, namespace, entry, "route")
        weight = entry.get("weight", 100 if len(spec.routes) == 1 else None)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise InvalidInput(f"route to {target['model']!r} has weight {weight!r}: expected a whole number from 0 to 100")
        key = (target["model"], str(target.get("version", "@" + str(target.get("alias")))))
        if key in seen:
            raise InvalidInput(f"route to {key[0]} {key[1]} appears twice: give it one weight")
        seen.add(key)
        routes.append({**target, "weight": weight})
    total = sum(r["weight"] for r in routes)
    if total != 100:
        raise InvalidInput(f"route weights add up to {total}: they must add up to 100 (e.g. 90 and 10)")
    shadow = _target(session, caller, namespace, spec.shadow, "shadow") if spec.shadow is not None else None
    if not 1 <= spec.replicas_min <= spec.replicas_max <= MAX_REPLICAS:
        raise InvalidInput(
            f"replicas min {spec.replicas_min} and max {spec.replicas_max} are not valid: "
            f"expected 1 <= min <= max <= {MAX_REPLICAS}"
        )
    if spec.sticky_header is not None and not _HEADER.match(spec.sticky_header):
        raise InvalidInput(f"sticky header {spec.sticky_header!r} is not a valid header name (letters, digits, '-')")
    return RevisionSpec(routes, shadow, spec.replicas_min, spec.replicas_max, spec.sticky_header)


def current(session: Session, endpoint: Endpoint) -> EndpointRevision | None:
    if endpoint.current_revision is None:
        return None
    return _get(session, endpoint, endpoint.current_revision)


def _get(session: Session, endpoint: Endpoint, number: int) -> EndpointRevision | None:
    return session.scalar(
        select(EndpointRevision).where(EndpointRevision.endpoint_id == endpoint.id, EndpointRevision.revision == number)
    )


def spec_of(revision: EndpointRevision) -> RevisionSpec:
    return RevisionSpec(
        routes=[dict(r) for r in revision.routes],
        shadow=dict(revision.shadow) if revision.shadow else None,
        replicas_min=revision.replicas_min,
        replicas_max=revision.replicas_max,
        sticky_header=revision.sticky_header,
    )


def create(
    session: Session, caller: Caller, namespace: str, name: str, spec: RevisionSpec, reason: str = "deploy"
) -> EndpointRevision:
    """Validate ``spec`` and make it the endpoint's new current revision."""
    caller.require(Action.PROMOTE, namespace)
    if reason not in REASONS:
        raise InvalidInput(f"reason {reason!r} is unknown: expected one of {', '.join(REASONS)}")
    endpoint = endpoints.get(session, caller, namespace, name)
    clean = validate(session, caller, namespace, spec)
    # Lock the endpoint so concurrent changes get distinct revision numbers.
    session.execute(select(Endpoint.id).where(Endpoint.id == endpoint.id).with_for_update())
    latest = session.scalar(select(func.max(EndpointRevision.revision)).where(EndpointRevision.endpoint_id == endpoint.id)) or 0
    revision = EndpointRevision(
        endpoint_id=endpoint.id,
        revision=latest + 1,
        routes=clean.routes,
        shadow=clean.shadow,
        replicas_min=clean.replicas_min,
        replicas_max=clean.replicas_max,
        sticky_header=clean.sticky_header,
        reason=reason,
        created_by=caller.name,
    )
    session.add(revision)
    endpoint.current_revision = revision.revision
    endpoint.updated_at = now_ms()
    session.flush()
    return revision


def change(
    session: Session,
    caller: Caller,
    namespace: str,
    name: str,
    *,
    routes: list[dict[str, Any]] | None = None,
    shadow: dict[str, Any] | Keep | None = KEEP,
    replicas: tuple[int, int] | None = None,
    sticky_header: str | Keep | None = KEEP,
    reason: str = "traffic",
) -> EndpointRevision:
    """A new revision from the current one with the given fields replaced (``KEEP`` leaves one as it is)."""
    endpoint = endpoints.get(session, caller, namespace, name)
    base = current(session, endpoint)
    if base is None and routes is None:
        raise Conflict(f"endpoint {name!r} has nothing deployed yet: deploy a model first ('shipyard deploy')")
    spec = spec_of(base) if base is not None else RevisionSpec(routes=[])
    if routes is not None:
        spec.routes = routes
    if not isinstance(shadow, Keep):
        spec.shadow = shadow
    if replicas is not None:
        spec.replicas_min, spec.replicas_max = replicas
    if not isinstance(sticky_header, Keep):
        spec.sticky_header = sticky_header
    return create(session, caller, namespace, name, spec, reason)


def rollback(session: Session, caller: Caller, namespace: str, name: str) -> EndpointRevision:
    """Serve again what the revision before the current one served, as a new revision."""
    caller.require(Action.PROMOTE, namespace)
    endpoint = endpoints.get(session, caller, namespace, name)
    if endpoint.current_revision is None or endpoint.current_revision < 2:
        raise Conflict(f"endpoint {name!r} has no earlier revision to roll back to")
    previous = _get(session, endpoint, endpoint.current_revision - 1)
    if previous is None:  # pragma: no cover - revisions are never deleted on their own
        raise NotFound(f"revision {endpoint.current_revision - 1} of endpoint {name!r} is missing")
    return create(session, caller, namespace, name, spec_of(previous), "rollback")


def list_for(session: Session, caller: Caller, namespace: str, name: str) -> list[EndpointRevision]:
    endpoint = endpoints.get(session, caller, namespace, name)
    return list(
        session.scalars(
            select(EndpointRevision).where(EndpointRevision.endpoint_id == endpoint.id).order_by(EndpointRevision.revision)
        )
    )
