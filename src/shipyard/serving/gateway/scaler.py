"""Locally, an endpoint's replicas are the gateway's worker processes.

Every worker serves every endpoint, so the gateway runs as many workers as the most
demanding endpoint's ``replicas.min``, never fewer than ``SHIPYARD_GATEWAY_WORKERS`` nor
more than ``SHIPYARD_GATEWAY_MAX_WORKERS``. (On Kubernetes replicas will be pod replicas.)

``WorkerScaler`` is a thread in uvicorn's supervisor process. It asks the supervisor for one
worker more or fewer with SIGTTIN or SIGTTOU, and sends the next signal only once the last
one has been handled: two identical signals pending at once merge into one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shipyard.serving.gateway.control import ControlPlane

log = logging.getLogger("shipyard.serving.gateway.scaler")

# A signal still unhandled after this long is taken as lost; the supervisor handles signals
# every half second, but restarting workers (SIGHUP) can keep it busy for a while.
SIGNAL_SETTLE_S = 60.0


@dataclass(frozen=True, slots=True)
class WorkerTarget:
    count: int
    reason: str  # completes "gateway workers 2 -> 3 ..."


def target_workers(document: Mapping[str, Any], *, fewest: int, most: int) -> WorkerTarget:
    """The largest ``replicas.min`` of the desired state's endpoints, clamped to [fewest, most]."""
    most = max(most, fewest)  # the fewest kept wins over a smaller maximum
    asking, wanted = "", 0
    for entry in document.get("endpoints", []):
        replicas = _replicas_min(entry)
        if replicas > wanted:
            asking, wanted = f"{entry.get('namespace')}/{entry.get('name')}", replicas
    if wanted <= fewest:
        return WorkerTarget(fewest, f"as no endpoint asks for more than SHIPYARD_GATEWAY_WORKERS={fewest}")
    reason = f"for endpoint {asking} replicas min {wanted}"
    if wanted > most:
        return WorkerTarget(most, f"{reason}, capped by SHIPYARD_GATEWAY_MAX_WORKERS={most}")
    return WorkerTarget(wanted, reason)


def _replicas_min(entry: Mapping[str, Any]) -> int:
    """An endpoint without replicas (or with a malformed entry) counts as one."""
    replicas = entry.get("replicas")
    value = replicas.get("min") if isinstance(replicas, Mapping) else None
    return value if isinstance(value, int) and value >= 1 else 1


class WorkerProcess(Protocol):
    @property
    def pid(self) -> int | None: ...


class Supervisor(Protocol):
    """What the scaler reads from uvicorn's ``Multiprocess``: it changes both only in its main thread."""

    @property
    def processes(self) -> Sequence[WorkerProcess]: ...

    @property
    def processes_num(self) -> int: ...


def signal_this_process(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)


def process_exists(pid: int) -> bool:
    """Whether ``pid`` is still running, or exited but not yet reaped by the supervisor."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid was reused by another user's process
        return False
    return True


class WorkerScaler:
    """Polls the desired state every ``poll_seconds`` and steps the supervisor's workers toward the target."""

    def __init__(
        self,
        control: ControlPlane,
        supervisor: Supervisor,
        *,
        fewest: int,
        most: int,
        poll_seconds: float,
        metrics_dir: str | None = None,
        send_signal: Callable[[signal.Signals], None] = signal_this_process,
        is_running: Callable[[int], bool] = process_exists,
    ) -> None:
        self.control = control
        self.supervisor = supervisor
        self.fewest = fewest
        self.most = max(most, fewest)
        self.poll_seconds = poll_seconds
        self.metrics_dir = metrics_dir  # PROMETHEUS_MULTIPROC_DIR, where dead workers' live gauges are dropped
        self.send_signal = send_signal
        self.is_running = is_running
        self.target = target_workers({}, fewest=fewest, most=most)
        self._etag: str | None = None
        self._pending: tuple[int, float] | None = None  # (worker count the last signal asks for, when to give up on it)
        self._known_pids: set[int] = set()
        self._leaving: set[int] = set()  # no longer the supervisor's workers, maybe still shutting down
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipyard-gateway-scaler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)  # a daemon: a control plane call still hanging does not hold up exit

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # never take the supervisor down; the next poll tries again
                log.exception("gateway scaler: unexpected error")
            self._stop.wait(self.poll_seconds)

    def tick(self) -> None:
        """One poll: note workers that are gone, follow the desired state, take one step toward the target."""
        self.note_gone_workers()
        self.refresh_target()
        self.step()

    def note_gone_workers(self) -> list[int]:
        """Workers that left the supervisor's list (retired or replaced) and have exited; their live gauges are dropped.

        A retired worker leaves the list before it has finished shutting down, and may write its gauges until then.
        """
        pids = {process.pid for process in list(self.supervisor.processes) if process.pid is not None}
        self._leaving = (self._leaving | (self._known_pids - pids)) - pids
        self._known_pids = pids
        gone = sorted(pid for pid in self._leaving if not self.is_running(pid))
        self._leaving.difference_update(gone)
        if gone and self.metrics_dir is not None:
            from prometheus_client import multiprocess  # only the supervisor needs it

            for pid in gone:
                multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        return gone

    def refresh_target(self) -> None:
        try:
            document = self.control.desired_state(self._etag)
        except Exception as exc:  # the control plane may be restarting: keep the workers there are
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:
                log.warning("cannot read the desired serving state to size the gateway (retrying): %s", message)
            self._last_error = message
            return
        if self._last_error is not None:
            log.info("the desired serving state is reachable again")
            self._last_error = None
        if document is None:  # unchanged since the last ETag
            return
        target = target_workers(document, fewest=self.fewest, most=self.most)
        if target.count != self.target.count:
            log.info("gateway workers %d -> %d %s", self.target.count, target.count, target.reason)
        self.target = target
        etag = document.get("etag")
        self._etag = str(etag) if etag else None

    def step(self) -> None:
        """Signal for one worker more or fewer, unless the last signal has not been handled yet."""
        current = self.supervisor.processes_num
        if self._pending is not None:
            expected, give_up_at = self._pending
            if current != expected and time.monotonic() < give_up_at:
                return
            self._pending = None
        if current == self.target.count:
            return
        grow = current < self.target.count
        self.send_signal(signal.SIGTTIN if grow else signal.SIGTTOU)
        self._pending = (current + 1 if grow else current - 1, time.monotonic() + SIGNAL_SETTLE_S)
