"""``shipyard token``: issue, list and revoke API tokens."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from shipyard.cli.context import NamespaceOption, connect, one_principal
from shipyard.cli.output import Format, OutputOption, console, emit, emit_record

app = typer.Typer(help="API tokens: scoped, expiring, stored hashed, revocable.", no_args_is_help=True)

COLUMNS = ("id", "name", "prefix", "scopes", "namespace", "expires_at", "revoked_at", "last_used_at")
UserOption = Annotated[str | None, typer.Option("--user", help="A user (default: yourself).")]
ServiceAccountOption = Annotated[str | None, typer.Option("--service-account", help="A service account in -n NAMESPACE.")]


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    PROMOTE = "promote"
    ADMIN = "admin"


@app.command("create")
def create(
    user: UserOption = None,
    service_account: ServiceAccountOption = None,
    namespace: NamespaceOption = "default",
    scope: Annotated[list[Scope] | None, typer.Option("--scope", help="Repeat for several; default read and write.")] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days until it expires.")] = 90,
    name: Annotated[str, typer.Option(help="A label to tell tokens apart.")] = "",
    output: OutputOption = Format.TABLE,
) -> None:
    """Issue a token. The secret is printed once and cannot be shown again."""
    one_principal(user, service_account)
    scopes = [s.value for s in scope] if scope else ["read", "write"]
    with connect() as client:
        issued = client.create_token(
            user=user,
            service_account=service_account,
            namespace=namespace if service_account else None,
            name=name,
            scopes=scopes,
            days=days,
        )
    if output == Format.JSON:
        emit_record(issued, output)
        return
    emit_record(issued, output, fields=COLUMNS)
    console.print(f"\n[bold]{issued['token']}[/bold]", highlight=False, soft_wrap=True)
    console.print("[yellow]Store this token now: it is not shown again.[/yellow]")


@app.command("list")
def list_(
    user: UserOption = None,
    service_account: ServiceAccountOption = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Tokens of a user or service account (default: yourself). Secrets are never listed."""
    one_principal(user, service_account)
    with connect() as client:
        found = client.list_tokens(user=user, service_account=service_account, namespace=namespace if service_account else None)
        emit(found, output, columns=COLUMNS)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see 'token list').")], output: OutputOption = Format.TABLE
) -> None:
    """Revoke a token: it stops working at once."""
    with connect() as client:
        emit_record(client.revoke_token(token_id), output, fields=COLUMNS)
