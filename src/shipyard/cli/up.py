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
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Also start the scheduler loop (schedules and triggers).")
    ] = True,
    monitor: Annotated[
        bool, typer.Option("--monitor/--no-monitor", help="Also start the monitor loop (drift, quality, alerts).")
    ] = True,
) -> None:
    """Start the control plane, gateway, scheduler and monitor loop. On an empty home, create the platform admin."""
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
    if gateway:  # the monitor loop (and the API's checks) read the gateway's resource use from its /metrics
        for key, value in _monitor_gateway(settings).items():
            os.environ.setdefault(key, value)
    children = []
    if gateway:
        children.append(_start_child(settings, ["gateway", "--log-level", log_level], gateway=True))
    if scheduler:
        children.append(_start_child(settings, ["scheduler"], gateway=False))
    if monitor:
        children.append(_start_child(settings, ["monitor", "run"], gateway=False))
    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default handler
    # that would end this process before the finally below stops the children.
    signal.signal(signal.SIGTERM, _exit_on_signal)
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
        for child in children:
            _stop(child)


def _monitor_gateway(settings: Settings) -> dict[str, str]:
    """Where the monitor finds this gateway's /metrics, and the token it may read them with."""
    from shipyard.serving.gateway.config import GatewayConfig

    config = GatewayConfig()
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host  # noqa: S104 - reach it on loopback
    found = {"SHIPYARD_MONITOR_GATEWAY_URL": f"http://{host}:{config.port}"}
    if not os.environ.get("SHIPYARD_TOKEN"):
        found["SHIPYARD_MONITOR_GATEWAY_TOKEN_FILE"] = str(settings.admin_token_path)
    return found


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_child(settings: Settings, arguments: list[str], *, gateway: bool) -> subprocess.Popen[bytes]:
    """``shipyard gateway``, ``scheduler`` or ``monitor run`` as a child process that reaches this control plane."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104 - reach ourselves on loopback
    env = {**os.environ, "SHIPYARD_URL": f"http://{host}:{settings.port}"}
    if gateway and not env.get("SHIPYARD_TOKEN"):
        env.setdefault("SHIPYARD_GATEWAY_TOKEN_FILE", str(settings.admin_token_path))
    command = [sys.executable, "-c", "from shipyard.cli.app import main; main()", *arguments]
    before = _die_with_parent if sys.platform == "linux" else None
    return subprocess.Popen(command, env=env, preexec_fn=before)  # noqa: PLW1509 - only a prctl call, before exec


def _die_with_parent() -> None:
    """Have the kernel send the child SIGTERM when ``up`` ends, even by SIGKILL or a re-raised signal."""
    import contextlib
    import ctypes

    # Best effort: the finally clause in up() still stops the children on a normal exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
