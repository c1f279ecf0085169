"""What every platform command shares: the namespace option and a client that turns errors into exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer
from rich.markup import escape

from shipyard.cli.output import err_console
from shipyard.client import Client
from shipyard.errors import ShipyardError

DEFAULT_NAMESPACE = "default"

NamespaceOption = Annotated[
    str,
    typer.Option("--namespace", "-n", envvar="SHIPYARD_NAMESPACE", help="Namespace to act in."),
]


@contextmanager
def connect(transport: httpx.BaseTransport | None = None) -> Iterator[Client]:
    """A client for SHIPYARD_URL / SHIPYARD_TOKEN; a ShipyardError inside prints in red and exits 1."""
    client = Client(transport=transport)
    try:
        with client:
            yield client
    except ShipyardError as exc:
        fail(exc.message)
    except httpx.TransportError as exc:  # streamed downloads reach httpx directly
        fail(f"cannot reach Shipyard at {client.url}: {exc}; is 'shipyard up' running?")


def fail(message: str) -> None:
    err_console.print(f"[red]Error: {escape(message)}[/red]", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def one_principal(user: str | None, service_account: str | None) -> None:
    """Reject --user with --service-account: a usage error (exit 2), not an API call."""
    if user and service_account:
        raise typer.BadParameter("give --user or --service-account, not both")
