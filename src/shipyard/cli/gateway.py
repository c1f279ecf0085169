"""``shipyard gateway``: the serving data plane, in uvicorn worker processes that follow the endpoints' replicas."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.settings import Settings

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTROL_PLANE_TIMEOUT_S = 10.0  # the scaler's calls; a hung control plane only delays resizing


def gateway(
    host: Annotated[str | None, typer.Option(help="Address to bind; default 127.0.0.1 (SHIPYARD_GATEWAY_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default 8421 (SHIPYARD_GATEWAY_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes at start, and the fewest kept; default 2.")
    ] = None,
    max_workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Most worker processes, grown to as endpoints' replicas ask; default 8."),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Token file for reaching the control plane; default SHIPYARD_TOKEN, else <home>/admin.token."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the deployed endpoints (KServe V1/V2, Vertex, MLflow scoring), following the control plane at SHIPYARD_URL."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess

    from shipyard.client import Client
    from shipyard.serving.gateway.config import GatewayConfig
    from shipyard.serving.gateway.control import SdkControlPlane
    from shipyard.serving.gateway.scaler import WorkerScaler

    # The workers read their settings from the environment, so options go there.
    options = (("HOST", host), ("PORT", port), ("WORKERS", workers), ("MAX_WORKERS", max_workers), ("TOKEN_FILE", token_file))
    for name, value in options:
        if value is not None:
            os.environ[f"SHIPYARD_GATEWAY_{name}"] = str(value)
    config = GatewayConfig()
    settings = Settings()
    if config.token_file is None and not settings.token and not settings.admin_token_path.exists():
        console.print("[red]No token to reach the control plane: pass --token-file or set SHIPYARD_TOKEN.[/red]")
        raise typer.Exit(2)
    if config.token_file is not None and not config.token_file.is_file():
        console.print(f"[red]Token file {config.token_file} not found: pass --token-file with a readable file.[/red]")
        raise typer.Exit(2)
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]Gateway listening on {config.host}: reachable beyond this machine.[/yellow]")
    most = max(config.max_workers, config.workers)
    console.print(
        f"Shipyard gateway on [bold]http://{config.host}:{config.port}[/bold] "
        f"({config.workers} workers, up to {most} as endpoints' replicas ask), following {settings.resolved_url()}"
    )
    _log_to_stderr()
    # What uvicorn.run(..., workers=N) would do, with the supervisor in our hands so the scaler can run beside it.
    server_config = uvicorn.Config(
        "shipyard.serving.gateway.app:create",
        factory=True,
        host=config.host,
        port=config.port,
        workers=config.workers,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    token = config.token_file.read_text().strip() if config.token_file is not None else None
    control = SdkControlPlane(Client(token=token, retries=1, timeout=CONTROL_PLANE_TIMEOUT_S))
    with metrics_directory() as metrics_dir:  # before the first worker starts, so every worker inherits it
        sock = server_config.bind_socket()
        supervisor = Multiprocess(server_config, sockets=[sock])  # installs the signal handlers the scaler relies on
        scaler = WorkerScaler(
            control,
            supervisor,
            fewest=config.workers,
            most=config.max_workers,
            poll_seconds=config.poll_seconds,
            metrics_dir=metrics_dir,
        )
        scaler.start()
        try:
            supervisor.run()
        except KeyboardInterrupt:
            pass
        finally:
            scaler.stop()
            control.close()
            sock.close()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise typer.Exit(STARTUP_FAILURE)  # a worker could not start, so the supervisor gave up: say so, as uvicorn.run does


@contextmanager
def metrics_directory() -> Iterator[str]:
    """The folder where worker processes keep their Prometheus values, so /metrics adds up every worker.

    The user's ``PROMETHEUS_MULTIPROC_DIR`` is kept and emptied of a previous run's values;
    otherwise a fresh folder is made, and removed on exit.
    """
    given = os.environ.get(METRICS_DIR_VARIABLE)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield given
        return
    made = tempfile.mkdtemp(prefix="shipyard-gateway-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = made
    try:
        yield made
    finally:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        shutil.rmtree(made, ignore_errors=True)


def _log_to_stderr() -> None:
    """The supervisor's own log lines (worker count changes), formatted as the workers' are."""
    logger = logging.getLogger("shipyard")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
