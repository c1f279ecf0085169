"""Serving endpoints: a named address in a namespace and the audience that may call it.

The audience says who may call: every member of the namespace (``namespace``), named
principals (``alice``, ``sa:<namespace>/<account>``), tokens with an ``invoke:<endpoint>``
scope (always), and anonymous callers only when a namespace admin says so.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.names import namespace_name
from shipyard.access.roles import Action
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store.models import Endpoint, EndpointRevision, now_ms

_PRINCIPAL = re.compile(r"^(sa:[a-z0-9-]{1,63}/)?[A-Za-z0-9][A-Za-z0-9._@-]{0,254}$")
MAX_AUDIENCE = 1000


def validate_audience(caller: Caller, namespace: str, audience: dict[str, Any] | None) -> dict[str, Any]:
    """Normalise an audience; opening an endpoint to anonymous callers needs a namespace admin."""
    given = dict(audience or {})
    unknown = set(given) - {"namespace", "principals", "anonymous"}
    if unknown:
        raise InvalidInput(f"audience fields {sorted(unknown)} are unknown: expected namespace, principals, anonymous")
    members = given.get("namespace", True)
    principals = given.get("principals", [])
    anonymous = given.get("anonymous", False)
    if not isinstance(members, bool) or not isinstance(anonymous, bool):
        raise InvalidInput("audience.namespace and audience.anonymous are true or false")
    if not isinstance(principals, list) or len(principals) > MAX_AUDIENCE:
        raise InvalidInput(f"audience.principals is a list of at most {MAX_AUDIENCE} names such as 'alice' or 'sa:team-a/scorer'")
    for name in principals:
        if not isinstance(name, str) or not _PRINCIPAL.match(name):
            raise InvalidInput(f"audience principal {name!r} is not valid: expected a user name or 'sa:<namespace>/<account>'")
    if anonymous:
        caller.require(Action.ADMIN, namespace)
    return {"namespace": members, "principals": sorted(set(principals)), "anonymous": anonymous}


def create(
    session: Session, caller: Caller, namespace: str, name: str, *, description: str = "", audience: dict[str, Any] | None = None
) -> Endpoint:
    namespaces.require_exists(session, caller, namespace, Action.PROMOTE)
    try:
        namespace_name(name)  # endpoint names become URL segments and Kubernetes names
    except InvalidInput:
        raise InvalidInput(
            f"endpoint name {name!r} is not valid: expected 1-63 lowercase letters, digits or '-' (e.g. 'churn')"
        ) from None
    if _find(session, namespace, name) is not None:
        raise AlreadyExists(f"endpoint {name!r} already exists in namespace {namespace!r}")
    endpoint = Endpoint(
        namespace=namespace,
        name=name,
        description=description,
        audience=validate_audience(caller, namespace, audience),
        created_by=caller.name,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def _find(session: Session, namespace: str, name: str) -> Endpoint | None:
    return session.scalar(select(Endpoint).where(Endpoint.namespace == namespace, Endpoint.name == name))


def get(session: Session, caller: Caller, namespace: str, name: str) -> Endpoint:
    caller.require(Action.READ, namespace)
    endpoint = _find(session, namespace, name)
    if endpoint is None:
        raise NotFound(f"endpoint {name!r} does not exist in namespace {namespace!r}")
    return endpoint


def list_in(session: Session, caller: Caller, namespace: str) -> list[Endpoint]:
    namespaces.require_exists(session, caller, namespace, Action.READ)
    return list(session.scalars(select(Endpoint).where(Endpoint.namespace == namespace).order_by(Endpoint.name)))


def update(
    session: Session,
    caller: Caller,
    namespace: str,
    name: str,
    *,
    description: str | None = None,
    audience: dict[str, Any] | None = None,
) -> Endpoint:
    caller.require(Action.PROMOTE, namespace)
    endpoint = get(session, caller, namespace, name)
    if description is not None:
        endpoint.description = description
    if audience is not None:
        endpoint.audience = validate_audience(caller, namespace, audience)
    endpoint.updated_at = now_ms()
    return endpoint


def delete(session: Session, caller: Caller, namespace: str, name: str) -> None:
    caller.require(Action.PROMOTE, namespace)
    endpoint = get(session, caller, namespace, name)
    # One statement, before the endpoint's own delete: the ORM knows of no relationship to order them by.
    session.execute(delete_rows(EndpointRevision).where(EndpointRevision.endpoint_id == endpoint.id))
    session.delete(endpoint)
