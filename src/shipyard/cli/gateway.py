"""``shipyard gateway``: the serving data plane, in N uvicorn worker processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.settings import Settings


def gateway(
    host: Annotated[str | None, typer.Option(help="Address to bind; default 127.0.0.1 (SHIPYARD_GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default 8421 (SHIPYARD_GATEWAY_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes; default 2.")] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Token file for reaching the control plane; default SHIPYARD_TOKEN, else <home>/admin.token."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the deployed endpoints (KServe V1/V2, Vertex, MLflow scoring), following the control plane at SHIPYARD_URL."""
    import uvicorn

    from shipyard.serving.gateway.config import GatewayConfig

    # The workers read their settings from the environment, so options go there.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers), ("TOKEN_FILE", token_file)):
        if value is not None:
            os.environ[f"SHIPYARD_GATEWAY_{name}"] = str(value)
    config = GatewayConfig()
    settings = Settings()
    if config.token_file is None and not settings.token and not settings.admin_token_path.exists():
        console.print("[red]No token to reach the control plane: pass --token-file or set SHIPYARD_TOKEN.[/red]")
        raise typer.Exit(2)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]Gateway listening on {config.host}: reachable beyond this machine.[/yellow]")
    console.print(
        f"Shipyard gateway on [bold]http://{config.host}:{config.port}[/bold] ({config.workers} workers), "
        f"following {settings.resolved_url()}"
    )
    uvicorn.run(
        "shipyard.serving.gateway.app:create",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
