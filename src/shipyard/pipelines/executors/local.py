"""The local executor: each step attempt in its own process, independent branches in parallel.

Processes come from a fork server (where the platform has one): it imports the heavy
libraries once, and each step forks from it, from a process with no threads, so a step
never inherits a lock some thread held. A process per attempt makes timeouts exact (the
process is killed) and keeps a crashing step from taking the runner down.

Forking from a server that holds NumPy, pandas and scikit-learn is not free (about 10 ms,
and as long again for the process to go away), so the executor keeps a *spare*: a process
forked ahead of need, from a background thread, that has already imported the module of
the last step it was given and waits for its one task. A step then starts as soon as its
task is written to the spare's pipe, and nobody waits for a finished process to exit. A
spare serves one attempt and ends, like any other step process; one prepared for another
working folder or import path, or prepared too long ago, is thrown away instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import pickle
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing import connection
from multiprocessing.connection import Connection
from typing import Any

from shipyard.pipelines.executors.base import Executor, Handle
from shipyard.pipelines.task import StepResult, StepTask, execute

log = logging.getLogger("shipyard.pipelines")

# Imported once in the fork server, not in every step: a missing one is skipped. scikit-learn
# and Parquet are what most steps (and the stored outputs of DataFrames) need.
PRELOAD = [
    "shipyard.pipelines.task",
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "sklearn.pipeline",
    "sklearn.linear_model",
    "sklearn.metrics",
]
SPARES = 1  # processes kept forked ahead of need
SPARE_MAX_AGE_S = 30.0  # an older spare may hold stale imports of the step's module: fork afresh
_MAIN = b"__main__"


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _child(task: StepTask, sender: Connection) -> None:
    """A process started for one known task (the task travels in its arguments)."""
    sender.send(execute(task, fresh_process=True))
    sender.close()


def _serve(tasks: Connection, results: Connection, modules: Sequence[str]) -> None:
    """A spare: import what the next step most likely needs, then run the one task it is sent."""
    for name in modules:
        with contextlib.suppress(Exception):  # the task's own unpickling reports a real failure
            importlib.import_module(name)
    try:
        task = tasks.recv()
    except EOFError:
        return  # the executor closed, or threw this spare away
    except Exception as exc:
        results.send(StepResult({}, [], f"{type(exc).__name__}: the worker process could not load the step: {exc}"))
        return
    finally:
        tasks.close()
    results.send(execute(task, fresh_process=True))
    results.close()


class _ProcessHandle:
    def __init__(self, process: Any, receiver: Connection, node: str) -> None:
        self.process = process
        self.receiver = receiver
        self.node = node
        self._result: StepResult | None = None

    def done(self) -> bool:
        if self._result is not None:
            return True
        if self.receiver.poll():
            try:
                self._result = self.receiver.recv()
            except EOFError:
                self._result = self._died()
            return True
        if not self.process.is_alive():
            # It may have sent its answer just before exiting.
            if self.receiver.poll():
                return self.done()
            self._result = self._died()
            return True
        return False

    def waitables(self) -> list[Any]:
        """What becomes readable when this attempt ends: its result pipe, or its process's sentinel."""
        return [] if self._result is not None else [self.receiver, self.process.sentinel]

    def result(self) -> StepResult:
        while not self.done():
            connection.wait(self.waitables(), 0.05)
        assert self._result is not None
        # The process is exiting on its own; nobody needs to wait for that (the fork server reaps it).
        self.receiver.close()
        return self._result

    def cancel(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.receiver.close()

    def _died(self) -> StepResult:
        self.process.join(timeout=5)
        code = self.process.exitcode
        return StepResult({}, [], f"WorkerDied: the process running step '{self.node}' ended with exit code {code}")


def _where() -> tuple[str, tuple[str, ...]]:
    """What a process inherits at its start and a step may depend on: the working folder and import path."""
    return os.getcwd(), tuple(sys.path)


@dataclasses.dataclass
class _Spare:
    process: Any
    tasks: Connection  # write end: the one task, pickled
    results: Connection  # read end: its StepResult
    where: tuple[str, tuple[str, ...]]
    has_main: bool  # whether the parent's __main__ was run in it (objects defined there unpickle)
    born: float

    def run(self, data: bytes, node: str) -> _ProcessHandle | None:
        """Hand the pickled task over; None when the spare has died meanwhile."""
        try:
            self.tasks.send_bytes(data)
        except OSError:
            self.discard()
            return None
        self.tasks.close()
        return _ProcessHandle(self.process, self.results, node)

    def discard(self) -> None:
        """End it: with its task pipe closed, the spare exits on its own."""
        self.tasks.close()
        self.results.close()


class _Spares:
    """Step processes forked ahead of need by a background thread, each for one task."""

    def __init__(self, context: Any, count: int) -> None:
        self.context = context
        self.count = count
        self.process_class = context.Process
        self.main_free = False  # whether spares skip the parent's __main__ (and so take no task that needs it)
        if context.get_start_method() == "forkserver":
            from shipyard.pipelines.executors import _forkserver

            if _forkserver.SUPPORTED:
                self.process_class, self.main_free = _forkserver.MainFreeProcess, True
        self._changed = threading.Condition()
        self._ready: list[_Spare] = []
        self._modules: tuple[str, ...] = ()
        self._closed = False
        self._thread: threading.Thread | None = None

    def take(self, needs_main: bool) -> _Spare | None:
        where, now = _where(), time.monotonic()
        found: _Spare | None = None
        stale: list[_Spare] = []
        kept: list[_Spare] = []
        with self._changed:
            for spare in self._ready:
                if spare.where != where or now - spare.born >= SPARE_MAX_AGE_S:
                    stale.append(spare)
                elif found is None and (spare.has_main or not needs_main):
                    found = spare
                else:
                    kept.append(spare)
            self._ready = kept
        for spare in stale:
            spare.discard()
        return found

    def refill(self, modules: Sequence[str]) -> None:
        """Have the background thread fork spares until ``count`` are ready, importing ``modules`` in them."""
        with self._changed:
            if self._closed:
                return
            self._modules = tuple(modules)
            if self._thread is None:
                self._thread = threading.Thread(target=self._keep_ready, name="shipyard-spares", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _keep_ready(self) -> None:
        while True:
            with self._changed:
                while not self._closed and len(self._ready) >= self.count:
                    self._changed.wait()
                if self._closed:
                    return
                modules = self._modules
            spare: _Spare | None = None
            try:
                spare = self._start(modules)
            except Exception:  # a spare is an optimisation: steps start the ordinary way without one
                log.debug("could not fork a spare step process", exc_info=True)
            if spare is None:
                with self._changed:
                    if not self._closed:
                        self._changed.wait()  # try again at the next step, not in a loop
            elif not self._add(spare):
                spare.discard()

    def _add(self, spare: _Spare) -> bool:
        with self._changed:
            if self._closed:
                return False
            self._ready.append(spare)
            return True

    def _start(self, modules: tuple[str, ...]) -> _Spare | None:
        task_r, task_w = self.context.Pipe(duplex=False)
        result_r, result_w = self.context.Pipe(duplex=False)
        where = _where()
        process = self.process_class(target=_serve, args=(task_r, result_w, modules), name="shipyard-step", daemon=True)
        try:
            process.start()
        finally:
            task_r.close()
            result_w.close()
        spare = _Spare(process, task_w, result_r, where, not self.main_free, time.monotonic())
        if _where() != where:  # moved while it started: it may hold the old folder or path
            spare.discard()
            return None
        return spare

    def close(self) -> None:
        with self._changed:
            self._closed = True
            ready, self._ready = self._ready, []
            self._changed.notify_all()
        for spare in ready:
            spare.discard()


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, max_parallel: int | None = None, *, spares: int = SPARES) -> None:
        super().__init__(max_parallel or os.cpu_count() or 1)
        self._context = _context()
        self._spares = _Spares(self._context, spares) if spares > 0 else None

    def submit(self, task: StepTask) -> _ProcessHandle:
        # Forked from the fork server, a step would see that server's environment, not this process's now.
        task = dataclasses.replace(task, environment={**os.environ, **task.environment})
        handle: _ProcessHandle | None = None
        if self._spares is not None:
            data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
            spare = self._spares.take(needs_main=_MAIN in data)
            if spare is not None:
                handle = spare.run(data, task.node)
        if handle is None:
            handle = self._start(task)
        if self._spares is not None:
            module = getattr(task.step.fn, "__module__", None)
            self._spares.refill([module] if module and module != "__main__" else [])
        return handle

    def _start(self, task: StepTask) -> _ProcessHandle:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_child, args=(task, sender), name=f"shipyard-step-{task.node}", daemon=True)
        process.start()
        sender.close()
        return _ProcessHandle(process, receiver, task.node)

    def wait(self, handles: Sequence[Handle], timeout: float) -> None:
        waitables: list[Any] = []
        for handle in handles:
            if not isinstance(handle, _ProcessHandle):
                super().wait(handles, timeout)
                return
            found = handle.waitables()
            if not found:
                return  # that one has its result already
            waitables.extend(found)
        if waitables:
            connection.wait(waitables, timeout)
        else:
            time.sleep(timeout)

    def close(self) -> None:
        if self._spares is not None:
            self._spares.close()
