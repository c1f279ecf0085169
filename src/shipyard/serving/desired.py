"""The desired serving state: what every gateway worker should be serving right now.

Aliases are resolved here, on every read, so an endpoint deployed as ``model@production``
follows the alias when it moves. The ETag is a digest of the document, so a poll that
finds nothing new costs one query and no transfer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.access.caller import Caller
from shipyard.store.models import Endpoint, EndpointRevision, ModelAlias, ModelVersion, RegisteredModel


def _versions(session: Session, namespace: str, refs: list[dict[str, Any]]) -> dict[tuple[str, str], ModelVersion]:
    """Resolve route targets to version rows, keyed by (model, 'v<n>' or '@alias')."""
    names = {r["model"] for r in refs}
    found: dict[tuple[str, str], ModelVersion] = {}
    if not names:
        return found
    by_name = {
        m.name: m
        for m in session.scalars(
            select(RegisteredModel).where(RegisteredModel.namespace == namespace, RegisteredModel.name.in_(names))
        )
    }
    for ref in refs:
        model = by_name.get(ref["model"])
        if model is None:
            continue
        number = ref.get("version")
        if number is None:
            alias = session.get(ModelAlias, (model.id, ref.get("alias")))
            if alias is None:
                continue
            number = alias.version
        row = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number))
        if row is not None:
            found[_ref_key(ref)] = row
    return found


def _target(ref: dict[str, Any], row: ModelVersion) -> dict[str, Any]:
    return {
        "model": ref["model"],
        "version": row.version,
        "format": row.format,
        "digest": row.artifact_digest,
        "onnx_digest": getattr(row, "onnx_digest", None),
        "signature": row.signature,
    }


def _ref_key(ref: dict[str, Any]) -> tuple[str, str]:
    return (ref["model"], f"v{ref['version']}" if ref.get("version") is not None else f"@{ref.get('alias')}")


def build(session: Session, caller: Caller) -> dict[str, Any]:
    """Every endpoint's current revision with model versions resolved; for platform components."""
    caller.require_platform_admin("read the desired serving state of every namespace")
    rows = session.execute(
        select(Endpoint, EndpointRevision)
        .join(
            EndpointRevision,
            (EndpointRevision.endpoint_id == Endpoint.id) & (EndpointRevision.revision == Endpoint.current_revision),
        )
        .order_by(Endpoint.namespace, Endpoint.name)
    ).all()
    served: list[dict[str, Any]] = []
    for endpoint, revision in rows:
        refs = list(revision.routes) + ([revision.shadow] if revision.shadow else [])
        resolved = _versions(session, endpoint.namespace, refs)
        routes = [
            {**_target(r, resolved[_ref_key(r)]), "weight": r["weight"]} for r in revision.routes if _ref_key(r) in resolved
        ]
        entry: dict[str, Any] = {
            "namespace": endpoint.namespace,
            "name": endpoint.name,
            "revision": revision.revision,
            "audience": endpoint.audience,
            "sticky_header": revision.sticky_header,
            "replicas": {"min": revision.replicas_min, "max": revision.replicas_max},
            "routes": routes,
            "shadow": None,
        }
        if revision.shadow and _ref_key(revision.shadow) in resolved:
            entry["shadow"] = _target(revision.shadow, resolved[_ref_key(revision.shadow)])
        if len(routes) != len(revision.routes):
            # A route's alias or version vanished: say so, and let gateways keep what they serve.
            entry["error"] = "a route's model version or alias no longer exists; redeploy the endpoint"
        served.append(entry)
    document: dict[str, Any] = {"endpoints": served}
    document["etag"] = hashlib.sha256(orjson.dumps(served, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return document
