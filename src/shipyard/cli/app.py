"""The ``shipyard`` command: one Typer app, one module per domain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import (
    alerts,
    aliases,
    audit,
    endpoints,
    events,
    experiments,
    feedback,
    gateway,
    loops,
    models,
    monitors,
    namespaces,
    notebook,
    pipelines,
    predict,
    principals,
    roles,
    runs,
    scheduler,
    schedules,
    tokens,
    up,
)

app = typer.Typer(
    name="shipyard",
    help="Shipyard: track experiments, version models, and run the platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    home: Annotated[Path | None, typer.Option("--home", help="Home folder (SHIPYARD_HOME); default ~/.shipyard.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="API address (SHIPYARD_URL); default the local 'shipyard up'.")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="API token (SHIPYARD_TOKEN); default <home>/admin.token when readable.")
    ] = None,
) -> None:
    if home is not None:
        os.environ["SHIPYARD_HOME"] = str(home.expanduser().resolve())
    if url is not None:
        os.environ["SHIPYARD_URL"] = url
    if token is not None:
        os.environ["SHIPYARD_TOKEN"] = token


app.command("up")(up.up)
app.command("gateway")(gateway.gateway)
app.command("scheduler")(scheduler.scheduler)
app.command("whoami")(audit.whoami)
app.command("audit")(audit.audit)
app.command("rollback")(aliases.rollback)
app.command("predict-batch")(predict.predict_batch)
app.add_typer(namespaces.app, name="namespace")
app.add_typer(principals.users, name="user")
app.add_typer(principals.service_accounts, name="service-account")
app.add_typer(tokens.app, name="token")
app.add_typer(roles.app, name="role")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(aliases.app, name="alias")
app.add_typer(endpoints.app, name="endpoint")
app.command("deploy")(endpoints.deploy)
app.command("traffic")(endpoints.traffic)
app.add_typer(pipelines.app, name="pipeline")
app.command("logs")(pipelines.logs)
app.add_typer(notebook.app, name="notebook")
app.add_typer(schedules.app, name="schedule")
app.add_typer(events.app, name="event")
app.add_typer(monitors.app, name="monitor")
app.command("alerts")(alerts.alerts)
app.add_typer(alerts.app, name="alert")
app.add_typer(feedback.app, name="feedback")
app.command("quality")(feedback.quality)
app.command("ab")(feedback.ab)
models.app.command("profile")(feedback.profile)
app.add_typer(loops.app, name="loop")


def main() -> None:
    app()
