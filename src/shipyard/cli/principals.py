"""``shipyard user`` and ``shipyard service-account``: who can hold a token."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit, emit_record

users = typer.Typer(help="Platform users: create, list, disable, enable.", no_args_is_help=True)
service_accounts = typer.Typer(help="Service accounts: identities for workloads, one namespace each.", no_args_is_help=True)

COLUMNS = ("name", "kind", "namespace", "display_name", "disabled", "created_at", "created_by")


@users.command("create")
def create_user(
    name: str,
    display_name: Annotated[str, typer.Option(help="Full name shown in listings.")] = "",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a user (platform admins). Give it a role and a token next."""
    with connect() as client:
        emit_record(client.create_user(name, display_name=display_name), output, fields=COLUMNS)


@users.command("list")
def list_users(output: OutputOption = Format.TABLE) -> None:
    """All users."""
    with connect() as client:
        emit(client.list_users(), output, columns=COLUMNS)


@users.command("disable")
def disable_user(name: str, output: OutputOption = Format.TABLE) -> None:
    """Disable a user: their tokens stop working until enabled again."""
    with connect() as client:
        emit_record(client.set_user_disabled(name, True), output, fields=COLUMNS)


@users.command("enable")
def enable_user(name: str, output: OutputOption = Format.TABLE) -> None:
    """Enable a disabled user."""
    with connect() as client:
        emit_record(client.set_user_disabled(name, False), output, fields=COLUMNS)


@service_accounts.command("create")
def create_service_account(
    name: str,
    namespace: NamespaceOption = "default",
    display_name: Annotated[str, typer.Option(help="What the account runs.")] = "",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a service account in a namespace."""
    with connect() as client:
        created = client.create_service_account(name, namespace=namespace, display_name=display_name)
        emit_record(created, output, fields=COLUMNS)


@service_accounts.command("list")
def list_service_accounts(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Service accounts of a namespace."""
    with connect() as client:
        emit(client.list_service_accounts(namespace=namespace), output, columns=COLUMNS)
