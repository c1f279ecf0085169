"""``shipyard up``: the control plane on this machine."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.settings import Settings


def up(
    host: Annotated[str | None, typer.Option(help="Address to bind; default 127.0.0.1 (SHIPYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default 8420 (SHIPYARD_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Start the control plane. On an empty home, create the platform admin and its token file."""
    # Imported here so that every other command starts without loading the server stack.
    import uvicorn

    from shipyard.runtime import Platform

    if host is not None:
        os.environ["SHIPYARD_HOST"] = host
    if port is not None:
        os.environ["SHIPYARD_PORT"] = str(port)
    settings = Settings()
    platform = Platform.open(settings)
    created = platform.ensure_admin()
    removed = platform.artifacts.clean_temp()
    platform.close()
    home = settings.resolved_home()
    if created:
        console.print(f"Created the platform admin. Its token is in [bold]{settings.admin_token_path}[/bold] (mode 0600).")
    if removed:
        console.print(f"Removed {removed} unfinished upload(s) left by an earlier stop.")
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]Listening on {settings.host}: reachable beyond this machine. Every route still needs a token.[/yellow]"
        )
    console.print(f"Shipyard API on [bold]http://{settings.host}:{settings.port}/api/v1[/bold] (docs at /docs), home {home}")
    os.environ["SHIPYARD_HOME"] = str(home)
    uvicorn.run(
        "shipyard.server.asgi:create",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
