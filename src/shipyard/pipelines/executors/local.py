"""The local executor: each step attempt in its own process, independent branches in parallel.

Processes come from a fork server (where the platform has one): it imports the heavy
libraries once, and each step forks from it in milliseconds, from a process with no
threads, so a step never inherits a lock some thread held. A process per attempt makes
timeouts exact (the process is killed) and keeps a crashing step from taking the runner down.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from multiprocessing.connection import Connection
from typing import Any

from shipyard.pipelines.executors.base import Executor
from shipyard.pipelines.task import StepResult, StepTask, execute

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


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _child(task: StepTask, sender: Connection) -> None:
    sender.send(execute(task))
    sender.close()


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

    def result(self) -> StepResult:
        while not self.done():
            self.receiver.poll(0.05)
        assert self._result is not None
        self.process.join(timeout=5)
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


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, max_parallel: int | None = None) -> None:
        super().__init__(max_parallel or os.cpu_count() or 1)
        self._context = _context()

    def submit(self, task: StepTask) -> _ProcessHandle:
        # Forked from the fork server, a step would see that server's environment, not this process's now.
        task = dataclasses.replace(task, environment={**os.environ, **task.environment})
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_child, args=(task, sender), name=f"shipyard-step-{task.node}", daemon=True)
        process.start()
        sender.close()
        return _ProcessHandle(process, receiver, task.node)
