"""``shipyard schedule``: pipelines that run by themselves, on cron times or on events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.context import NamespaceOption, connect, fail
from shipyard.cli.output import Format, OutputOption, console, emit, emit_outcome, emit_record
from shipyard.cli.pipelines import ExecutorOption, parse_params

app = typer.Typer(help="Schedules: run pipelines on cron times or when something happens.", no_args_is_help=True)

COLUMNS = ("name", "pipeline", "cron", "timezone", "on_event", "enabled", "next_due_at", "priority")
FIRE_COLUMNS = ("created_at", "due_at", "status", "pipeline_run_id", "reason", "error")


def parse_trigger(value: str | None, status: str | None) -> dict[str, str] | None:
    """``KIND:SUBJECT``, e.g. ``dataset.version:catalogue`` or ``pipeline.finished:train``."""
    if value is None:
        if status is not None:
            raise typer.BadParameter("--on-status needs --on pipeline.finished:NAME")
        return None
    kind, colon, subject = value.partition(":")
    if not colon or not kind or not subject:
        raise typer.BadParameter(
            f"{value!r} is not a trigger: expected KIND:SUBJECT, e.g. dataset.version:catalogue, alert.fired:drift-price "
            "or pipeline.finished:train"
        )
    trigger = {"kind": kind, "subject": subject}
    if status is not None:
        trigger["status"] = status
    return trigger


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Schedule name, e.g. nightly-retrain.")],
    target: Annotated[str, typer.Argument(help="The pipeline: MODULE:NAME or FILE.py:NAME, importable from --workdir.")],
    cron: Annotated[str | None, typer.Option(help="Five-field cron expression, e.g. '0 2 * * *'.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone the cron expression is read in.")] = "UTC",
    on: Annotated[
        str | None, typer.Option("--on", help="Run on an event: KIND:SUBJECT (dataset.version, alert.fired, pipeline.finished).")
    ] = None,
    on_status: Annotated[
        str | None, typer.Option(help="With --on pipeline.finished:NAME: react to succeeded (default), failed or cancelled.")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="A pipeline parameter, KEY=VALUE; repeatable.")] = None,
    executor: ExecutorOption = "local",
    priority: Annotated[int, typer.Option(help="Queue priority of its runs: higher first.")] = 0,
    workdir: Annotated[Path | None, typer.Option(help="Folder the pipeline imports from; default the current one.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    namespace: NamespaceOption = "default",
    output: OutputOption = Format.TABLE,
) -> None:
    """Create or replace a schedule. Its runs act as you, with a token limited to the namespace."""
    if cron is None and on is None:
        fail("give --cron, --on, or both: a schedule needs something to run on")
    with connect() as client:
        record = client.put_schedule(
            name, target, cron=cron, timezone=timezone, on_event=parse_trigger(on, on_status), params=parse_params(param),
            executor=executor, priority=priority, workdir=str((workdir or Path.cwd()).resolve()), enabled=not paused,
            namespace=namespace,
        )  # fmt: skip
    emit_record(record, output, fields=COLUMNS, title=f"Schedule {name}")


@app.command("list")
def list_(namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """The namespace's schedules."""
    with connect() as client:
        emit(client.list_schedules(namespace=namespace), output, columns=COLUMNS, title=f"Schedules in {namespace}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Schedule name.")],
    namespace: NamespaceOption = "default",
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent firings.")] = 10,
    output: OutputOption = Format.TABLE,
) -> None:
    """A schedule and its recent firings (due time, reason, status, the pipeline run it started)."""
    with connect() as client:
        record = client.get_schedule(name, namespace=namespace)
        fires = client.schedule_fires(name, limit=limit, namespace=namespace)
    if output != Format.TABLE:
        emit({**record, "fires": fires}, output)
        return
    emit_record(record, output, title=f"Schedule {name}")
    if not fires:
        console.print("[dim]No firings yet.[/dim]")
        return
    emit(fires, output, columns=FIRE_COLUMNS, title="Recent firings")


@app.command("pause")
def pause(name: str, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Stop a schedule from firing."""
    with connect() as client:
        emit_record(client.set_schedule_enabled(name, False, namespace=namespace), output, fields=COLUMNS)


@app.command("resume")
def resume(name: str, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Let a paused schedule fire again; times that passed while paused are not made up."""
    with connect() as client:
        emit_record(client.set_schedule_enabled(name, True, namespace=namespace), output, fields=COLUMNS)


@app.command("delete")
def delete(name: str, namespace: NamespaceOption = "default", output: OutputOption = Format.TABLE) -> None:
    """Delete a schedule and its firing history (its pipeline runs stay)."""
    with connect() as client:
        client.delete_schedule(name, namespace=namespace)
    emit_outcome(f"Deleted schedule [bold]{name}[/bold].", {"deleted": name}, output)
