"""The chain bench/pipelines.py runs: importable by module name, as the executors' workers need."""

from __future__ import annotations

from shipyard.pipelines import pipeline, step


def add_one_plain(value: int) -> int:
    return value + 1


@step
def add_one(value: int) -> int:
    return value + 1


@pipeline
def chain(steps: int = 20, start: int = 0) -> None:
    """``steps`` calls of the same step, each on the previous output: nodes add_one, add_one_2, ..."""
    value = add_one(start)
    for _ in range(steps - 1):
        value = add_one(value)
