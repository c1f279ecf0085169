"""``shipyard endpoint``, ``shipyard deploy`` and ``shipyard traffic``: serving a model version."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit, emit_record

app = typer.Typer(help="Serving endpoints: create, list, inspect, roll back, delete.", no_args_is_help=True)

COLUMNS = ("name", "current_revision", "routes", "audience", "updated_at")
REVISION_COLUMNS = ("revision", "routes", "shadow", "replicas_min", "replicas_max", "reason", "created_at", "created_by")
EndpointArgument = Annotated[str, typer.Argument(help="Endpoint name.")]
_REF = re.compile(r"^(?P<model>[^@:=]+)(?:@(?P<alias>[a-z][a-z0-9_-]*)|:(?P<version>\d+))$")
_WEIGHTED = re.compile(r"^(?P<ref>[^=]+)=(?P<weight>\d+)$")


def parse_ref(text: str) -> dict[str, Any]:
    """``model:3`` or ``model@production`` -> a model reference."""
    match = _REF.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a model reference: expected MODEL:VERSION or MODEL@ALIAS (e.g. churn:3)")
    if match["alias"]:
        return {"model": match["model"], "alias": match["alias"]}
    return {"model": match["model"], "version": int(match["version"])}


def parse_route(text: str) -> dict[str, Any]:
    """``model:3=90`` -> a weighted route."""
    match = _WEIGHTED.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a weighted route: expected MODEL:VERSION=WEIGHT (e.g. churn:3=90)")
    return {**parse_ref(match["ref"]), "weight": int(match["weight"])}


def _summary(endpoint: dict[str, Any]) -> dict[str, Any]:
    current = endpoint.get("current") or {}
    routes = [_route_text(r) for r in current.get("routes", [])]
    return {**endpoint, "routes": routes}


def _route_text(route: dict[str, Any]) -> str:
    target = f"@{route['alias']}" if "alias" in route else f":{route['version']}"
    return f"{route['model']}{target}={route.get('weight', 100)}"


@app.command("create")
def create(
    name: EndpointArgument,
    namespace: NamespaceOption = "default",
    user: Annotated[list[str] | None, typer.Option("--allow", help="A user or sa:<ns>/<account> who may call.")] = None,
    members: Annotated[bool, typer.Option("--members/--no-members", help="Every namespace member may call.")] = True,
    anonymous: Annotated[bool, typer.Option("--anonymous", help="Anyone, no token (namespace admins only).")] = False,
    description: str = "",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create an endpoint and say who may call it."""
    audience = {"namespace": members, "principals": user or [], "anonymous": anonymous}
    with connect() as client:
        created = client.create_endpoint(name, namespace=namespace, description=description, audience=audience)
    emit_record(_summary(created), output, fields=COLUMNS)


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Endpoints of a namespace and what each serves."""
    with connect() as client:
        found = client.list_endpoints(namespace=namespace)
    emit([_summary(e) for e in found] if output == Format.TABLE else found, output, columns=COLUMNS)


@app.command("get")
def get(name: EndpointArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """One endpoint: audience and current revision."""
    with connect() as client:
        found = client.get_endpoint(name, namespace=namespace)
    emit_record(_summary(found) if output == Format.TABLE else found, output, fields=COLUMNS)


@app.command("revisions")
def revisions(name: EndpointArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Every revision of an endpoint, oldest first."""
    with connect() as client:
        found = client.list_revisions(name, namespace=namespace)
    rows = [{**r, "routes": [_route_text(x) for x in r["routes"]]} for r in found] if output == Format.TABLE else found
    emit(rows, output, columns=REVISION_COLUMNS)


@app.command("rollback")
def rollback(name: EndpointArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Serve again what the previous revision served (as a new revision)."""
    with connect() as client:
        revision = client.rollback_endpoint(name, namespace=namespace)
    emit_record(revision, output, fields=REVISION_COLUMNS)


@app.command("delete")
def delete(name: EndpointArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Delete an endpoint and its revisions."""
    with connect() as client:
        client.delete_endpoint(name, namespace=namespace)
    emit_record({"deleted": name, "namespace": namespace}, output)


def deploy(
    endpoint: EndpointArgument,
    model: Annotated[str, typer.Argument(help="MODEL@ALIAS (follows the alias) or MODEL:VERSION.")],
    namespace: NamespaceOption = "default",
    replicas: Annotated[int, typer.Option(min=1, max=64, help="Replicas (gateway workers / pods).")] = 1,
    output: OutputOption = Format.TABLE,
) -> None:
    """Serve a model version on an endpoint (created if missing), swapping with zero downtime."""
    ref = parse_ref(model)
    with connect() as client:
        revision = client.deploy(
            endpoint,
            ref["model"],
            version=ref.get("version"),
            alias=ref.get("alias"),
            namespace=namespace,
            replicas=(replicas, replicas),
        )
    emit_record(revision, output, fields=REVISION_COLUMNS)


def traffic(
    endpoint: EndpointArgument,
    routes: Annotated[list[str], typer.Argument(help="MODEL:VERSION=WEIGHT ... adding up to 100, e.g. churn:3=90 churn:4=10.")],
    namespace: NamespaceOption = "default",
    shadow: Annotated[
        str | None, typer.Option(help="MODEL:VERSION that gets a copy of every request; answers logged only.")
    ] = None,
    sticky_header: Annotated[str | None, typer.Option(help="Header whose value keeps a caller on one version.")] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Split traffic between versions (A/B, canary), optionally with a shadow and sticky routing."""
    parsed = [parse_route(r) for r in routes]
    shadow_ref = parse_ref(shadow) if shadow else None  # a usage error before any call to the API
    with connect() as client:
        current = client.get_endpoint(endpoint, namespace=namespace).get("current") or {}
        revision = client.create_revision(
            endpoint,
            parsed,
            namespace=namespace,
            shadow=shadow_ref,
            replicas=(current.get("replicas_min", 1), current.get("replicas_max", 1)),
            sticky_header=sticky_header,
            reason="traffic",
        )
    emit_record(revision, output, fields=REVISION_COLUMNS)
