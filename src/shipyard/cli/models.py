"""``shipyard models``: the registry, its versions and their lineage."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.lineage import lineage_tree
from shipyard.cli.output import Format, OutputOption, console, emit, emit_record

app = typer.Typer(help="Registered models: list, show, versions, lineage.", no_args_is_help=True)

MODEL_FIELDS = ("name", "namespace", "description", "latest_version", "aliases", "tags", "created_at", "created_by", "updated_at")
VERSION_COLUMNS = ("version", "format", "aliases", "run_id", "metrics", "artifact_size", "created_at", "created_by")
ModelArgument = Annotated[str, typer.Argument(help="Model name.")]


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Models of a namespace."""
    with connect() as client:
        emit(client.list_models(namespace=namespace), output, columns=("name", "description", "created_at", "updated_at"))


@app.command("get")
def get(name: ModelArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """A model with its aliases and latest version."""
    with connect() as client:
        model = client.get_model(name, namespace=namespace)
    if output == Format.JSON:
        emit_record(model, output)
        return
    emit_record({**model, "aliases": {a["alias"]: f"v{a['version']}" for a in model["aliases"]}}, output, fields=MODEL_FIELDS)


@app.command("versions")
def versions(name: ModelArgument, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Every version of a model."""
    with connect() as client:
        emit(client.list_model_versions(name, namespace=namespace), output, columns=VERSION_COLUMNS, title=name)


@app.command("lineage")
def lineage(
    name: ModelArgument,
    version: Annotated[int, typer.Argument(min=1, help="Version number.")],
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Where a version came from: its run, code version, params, metrics and datasets."""
    with connect() as client:
        found = client.lineage(name, version, namespace=namespace)
    if output == Format.JSON:
        emit_record(found, output)
    else:
        console.print(lineage_tree(found))
