"""The executor interface: submit a task, poll its handle, cancel it when it runs too long."""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max(1, max_parallel)

    @abstractmethod
    def submit(self, task: StepTask) -> Handle: ...

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the executor holds (worker pools, cluster connections)."""
