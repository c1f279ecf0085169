"""``shipyard namespace``: the tenants of the platform."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import connect
from shipyard.cli.output import Format, OutputOption, emit, emit_outcome, emit_record

app = typer.Typer(help="Create, list, show and delete namespaces.", no_args_is_help=True)

COLUMNS = ("name", "description", "created_at", "created_by")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Lower-case name, e.g. team-a.")],
    description: Annotated[str, typer.Option(help="What the namespace is for.")] = "",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create a namespace (platform admins)."""
    with connect() as client:
        emit_record(client.create_namespace(name, description=description), output, fields=COLUMNS)


@app.command("list")
def list_(output: OutputOption = Format.TABLE) -> None:
    """Namespaces you can see."""
    with connect() as client:
        emit(client.list_namespaces(), output, columns=COLUMNS)


@app.command("get")
def get(name: str, output: OutputOption = Format.TABLE) -> None:
    """Show one namespace."""
    with connect() as client:
        emit_record(client.get_namespace(name), output)


@app.command("delete")
def delete(name: str, output: OutputOption = Format.TABLE) -> None:
    """Delete a namespace (platform admins)."""
    with connect() as client:
        client.delete_namespace(name)
    emit_outcome(f"Deleted namespace [bold]{name}[/bold].", {"deleted": name}, output)
