"""``shipyard up``: the control plane on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Annotated

import typer

from shipyard.cli.output import console
from shipyard.settings import Settings


def up(
    host: Annotated[str | None, typer.Option(help="Address to bind; default 127.0.0.1 (SHIPYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default 8420 (SHIPYARD_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    gateway: Annotated[
        bool, typer.Option("--gateway/--no-gateway", help="Also start the serving gateway (SHIPYARD_GATEWAY_PORT, 8421).")
    ] = True,
) -> None:
    """Start the control plane and the serving gateway. On an empty home, create the platform admin and its token file."""
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
    gateway_process = _start_gateway(settings, log_level) if gateway else None
    try:
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
    finally:
        if gateway_process is not None:
            _stop(gateway_process)


def _start_gateway(settings: Settings, log_level: str) -> subprocess.Popen[bytes]:
    """``shipyard gateway`` as a child process, following this control plane with the admin token file."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - reach ourselves on loopback
    env = {**os.environ, "SHIPYARD_URL": f"http://{host}:{settings.port}"}
    if not env.get("SHIPYARD_TOKEN"):
        env.setdefault("SHIPYARD_GATEWAY_TOKEN_FILE", str(settings.admin_token_path))
    command = [sys.executable, "-c", "from shipyard.cli.app import main; main()", "gateway", "--log-level", log_level]
    before = _die_with_parent if sys.platform == "linux" else None
    return subprocess.Popen(command, env=env, preexec_fn=before)  # noqa: PLW1509 - only a prctl call, before exec


def _die_with_parent() -> None:
    """Have the kernel send the gateway SIGTERM when ``up`` ends, even by SIGKILL or a re-raised signal."""
    import contextlib
    import ctypes

    # Best effort: the finally clause in up() still stops the gateway on a normal exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
