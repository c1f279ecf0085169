"""The executor interface: submit a task, poll its handle, cancel it when it runs too long."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, Protocol

from shipyard.pipelines.task import StepResult, StepTask


class Handle(Protocol):
    def done(self) -> bool:
        """Whether ``result`` would answer without waiting."""
        ...

    def result(self) -> StepResult:
        """The outcome; a crashed worker is a failed result, never an exception."""
        ...

    def cancel(self) -> None:
        """Stop the task now (timeouts, cancelled runs)."""
        ...


POLL_S = 0.002  # how often ``wait`` looks again where an executor cannot be woken by a finished task


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max(1, max_parallel)

    @abstractmethod
    def submit(self, task: StepTask) -> Handle: ...

    def wait(self, handles: Sequence[Handle], timeout: float) -> None:
        """Return once one of ``handles`` may be done, or after ``timeout`` seconds at the most.

        The default polls; executors that can block until a task ends override it.
        """
        time.sleep(min(timeout, POLL_S))

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the executor holds (worker pools, cluster connections)."""
