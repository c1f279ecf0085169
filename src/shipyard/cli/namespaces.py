"""``shipyard namespace``: the tenants of the platform."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.context import connect, fail
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


@app.command("quota")
def quota(
    name: Annotated[str, typer.Argument(help="The namespace.")],
    cpu: Annotated[float | None, typer.Option(min=0, help="CPUs its running pipeline runs may hold at once.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory they may hold, e.g. 8Gi or 512Mi.")] = None,
    gpu: Annotated[float | None, typer.Option(min=0, help="GPUs they may hold.")] = None,
    runs: Annotated[int | None, typer.Option("--runs", min=0, help="Pipeline runs running at once.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the quota: runs never wait.")] = False,
    output: OutputOption = Format.TABLE,
) -> None:
    """Show a namespace's quota, or set it (platform admins): runs over it wait in the namespace's queue.

    Setting replaces the whole quota; a limit not given is no limit.
    """
    from shipyard.errors import ShipyardError
    from shipyard.pipelines.options import Resources

    with connect() as client:
        if remove:
            client.remove_quota(namespace=name)
            emit_outcome(f"Removed the quota of [bold]{name}[/bold].", {"namespace": name, "quota": None}, output)
            return
        if cpu is None and memory is None and gpu is None and runs is None:
            found = client.pipeline_queue(namespace=name)["quota"]
            emit_record(found or {"quota": "none"}, output, title=f"Quota of {name}")
            return
        try:
            memory_mb = Resources.parse({"memory": memory}).memory_mb if memory is not None else None
        except ShipyardError as exc:
            fail(exc.message)
            return
        set_to = client.set_quota(cpu=cpu, memory_mb=memory_mb, gpu=gpu, concurrent_runs=runs, namespace=name)
        emit_record(set_to, output, title=f"Quota of {name}")
