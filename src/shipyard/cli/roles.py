"""``shipyard role``: who may do what in a namespace."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.access.roles import Role
from shipyard.cli.context import NamespaceOption, connect, one_principal
from shipyard.cli.output import Format, OutputOption, emit, emit_outcome, emit_record

app = typer.Typer(
    help="Role bindings: grant, revoke and list roles in a namespace ('-n *' for platform-wide).", no_args_is_help=True
)

COLUMNS = ("principal", "kind", "role", "namespace", "created_at", "created_by")
UserOption = Annotated[str | None, typer.Option("--user", help="A user.")]
ServiceAccountOption = Annotated[str | None, typer.Option("--service-account", help="A service account of the namespace.")]


def _principal(user: str | None, service_account: str | None) -> None:
    one_principal(user, service_account)
    if not (user or service_account):
        raise typer.BadParameter("name who: --user NAME or --service-account NAME")


@app.command("grant")
def grant(
    role: Annotated[Role, typer.Argument(help="viewer, editor, operator, admin, or platform-admin with -n '*'.")],
    user: UserOption = None,
    service_account: ServiceAccountOption = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Give a principal a role in a namespace (replaces the role it had there)."""
    _principal(user, service_account)
    with connect() as client:
        binding = client.grant_role(role.value, user=user, service_account=service_account, namespace=namespace)
        emit_record(binding, output, fields=COLUMNS)


@app.command("revoke")
def revoke(
    user: UserOption = None,
    service_account: ServiceAccountOption = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Remove a principal's role in a namespace."""
    _principal(user, service_account)
    with connect() as client:
        client.revoke_role(user=user, service_account=service_account, namespace=namespace)
    principal = user or service_account
    record = {"namespace": namespace, "user": user, "service_account": service_account, "removed": True}
    emit_outcome(f"Removed the role of [bold]{principal}[/bold] in {namespace}.", record, output)


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Members of a namespace and their roles."""
    with connect() as client:
        emit(client.list_role_bindings(namespace=namespace), output, columns=COLUMNS)
