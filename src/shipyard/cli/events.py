"""``shipyard event``: report a dataset version or an alert, and read what happened."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from shipyard.cli.context import NamespaceOption, connect
from shipyard.cli.output import Format, OutputOption, emit, emit_record

app = typer.Typer(help="Events that schedules trigger on: dataset versions, alerts, finished pipelines.", no_args_is_help=True)

COLUMNS = ("id", "kind", "subject", "payload", "created_at", "created_by")


@app.command("emit")
def emit_event(
    kind: Annotated[str, typer.Argument(help="dataset.version or alert.fired.")],
    subject: Annotated[str, typer.Argument(help="The dataset's or alert's name.")],
    payload: Annotated[str | None, typer.Option(help="A JSON object, e.g. '{\"version\": 3}'.")] = None,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Report an event; schedules whose --on trigger matches it start a run."""
    try:
        body = orjson.loads(payload) if payload is not None else None
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"--payload is not JSON ({exc}): expected an object such as '{{\"version\": 3}}'") from exc
    with connect() as client:
        emit_record(client.emit_event(kind, subject, body, namespace=namespace), output, fields=COLUMNS)


@app.command("list")
def list_(
    namespace: NamespaceOption = "default",
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    after: Annotated[int, typer.Option(min=0, help="Only events with a larger id.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    output: OutputOption = Format.TABLE,
) -> None:
    """Events in a namespace, oldest first."""
    with connect() as client:
        found = client.list_events(kind=kind, subject=subject, after=after, limit=limit, namespace=namespace)
    emit(found, output, columns=COLUMNS, title=f"Events in {namespace}")
