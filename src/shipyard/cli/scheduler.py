"""``shipyard scheduler``: the loop that starts scheduled and triggered pipeline runs (``shipyard up`` runs it)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from shipyard.cli.output import console

log = logging.getLogger("shipyard.scheduler")


def scheduler(
    interval: Annotated[
        float | None, typer.Option(min=0.05, help="Seconds between passes; default 5 (SHIPYARD_SCHEDULER_INTERVAL_S).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Do one pass and exit.")] = False,
) -> None:
    """Start runs of schedules that are due and of triggers whose events arrived; runs talk to SHIPYARD_URL."""
    from shipyard.pipelines.scheduler import ProcessLauncher, Scheduler
    from shipyard.runtime import Platform
    from shipyard.settings import Settings

    settings = Settings()
    platform = Platform.open(settings)
    launcher = ProcessLauncher(settings.resolved_url(), settings.resolved_home() / "scheduler")
    loop = Scheduler(platform.db, launcher)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    pause = interval if interval is not None else settings.scheduler_interval_s
    console.print(f"Scheduler: a pass every {pause:g} s; run logs in {launcher.log_dir}")
    try:
        while not stop.is_set():
            try:
                for fire_id in loop.tick():
                    log.info("started scheduled run %s", fire_id)
            except Exception:  # a bad pass (database away) must not end the loop
                log.exception("scheduler pass failed; trying again in %s s", pause)
            if once:
                break
            stop.wait(pause)
    finally:
        launcher.stop()
        platform.close()
