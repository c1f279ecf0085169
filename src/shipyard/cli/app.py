"""The ``shipyard`` command: one Typer app, one module per domain."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import up

app = typer.Typer(
    name="shipyard",
    help="Shipyard: track experiments, version models, and run the platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    home: Annotated[Path | None, typer.Option("--home", help="Home folder (SHIPYARD_HOME); default ~/.shipyard.")] = None,
) -> None:
    if home is not None:
        os.environ["SHIPYARD_HOME"] = str(home.expanduser().resolve())


app.command("up")(up.up)


def main() -> None:
    app()
