"""``shipyard experiments``: the groups runs are tracked in."""

from __future__ import annotations

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit

app = typer.Typer(help="Experiments of a namespace.", no_args_is_help=True)

COLUMNS = ("id", "name", "description", "tags", "created_at", "created_by")


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Experiments of a namespace."""
    with connect() as client:
        emit(client.list_experiments(namespace=namespace), output, columns=COLUMNS)
