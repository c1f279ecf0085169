"""``shipyard alias`` and ``shipyard rollback``: names like ``production`` that point at a model version."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit, emit_outcome, emit_record

app = typer.Typer(help="Model aliases: set, delete, list, and their history.", no_args_is_help=True)

COLUMNS = ("alias", "version", "updated_at", "updated_by")
ModelArgument = Annotated[str, typer.Argument(help="Model name.")]
AliasArgument = Annotated[str, typer.Argument(help="Alias, e.g. production.")]


@app.command("set")
def set_(
    model: ModelArgument,
    alias: AliasArgument,
    version: Annotated[int, typer.Argument(min=1, help="Version to point at.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Point an alias at a version (the previous target is kept in its history)."""
    with connect() as client:
        emit_record(client.set_alias(model, alias, version, namespace=namespace), output, fields=COLUMNS)


@app.command("delete")
def delete(
    model: ModelArgument, alias: AliasArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE
) -> None:
    """Remove an alias."""
    with connect() as client:
        client.delete_alias(model, alias, namespace=namespace)
    emit_outcome(f"Deleted alias [bold]{alias}[/bold] of {model}.", {"model": model, "deleted": alias}, output)


@app.command("list")
def list_(model: ModelArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Aliases of a model and the versions they point at."""
    with connect() as client:
        emit(client.get_model(model, namespace=namespace)["aliases"], output, columns=COLUMNS, title=model)


@app.command("history")
def history(
    model: ModelArgument, alias: AliasArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE
) -> None:
    """Every change of an alias, oldest first."""
    with connect() as client:
        changes = client.alias_history(model, alias, namespace=namespace)
        emit(changes, output, columns=("time", "action", "previous_version", "version", "actor"), title=f"{model}@{alias}")


def rollback(
    model: ModelArgument,
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = "production",
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Move an alias back to the version it pointed at before."""
    with connect() as client:
        before = client.get_model_version(model, alias=alias, namespace=namespace)["version"]
        after = client.rollback(model, alias, namespace=namespace)
    message = f"Rolled back [bold]{model}@{alias}[/bold] from v{before} to v{after['version']}."
    emit_outcome(message, {**after, "previous_version": before}, output)
