"""Pipelines the runner tests run: importable by module name, as worker processes need."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

from shipyard.pipelines import pipeline, step

FAIL_FILE = "SHIPYARD_TEST_FAIL_FILE"  # while this file exists, `flaky` fails
COUNT_FILE = "SHIPYARD_TEST_COUNT_FILE"  # `fails_once` appends a line per attempt

log = logging.getLogger("sample")


@step
def load(rows: int = 400) -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True).frame
    print(f"loaded {len(data)} rows, keeping {rows}")
    return data.head(rows)


@step(outputs=("train", "test"))
def split(frame: pd.DataFrame, test_share: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = int(len(frame) * (1 - test_share))
    return frame.iloc[:cut], frame.iloc[cut:]


@step(resources={"cpu": 1})
def train(frame: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    log.info("training on %d rows with C=%s", len(x), c)
    return LogisticRegression(C=c, max_iter=2000).fit(x, y)


@step
def evaluate(model: LogisticRegression, frame: pd.DataFrame) -> dict[str, Any]:
    x, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return {"accuracy": float((model.predict(x) == y).mean()), "rows": len(y)}


@pipeline
def quickstart(rows: int = 400, c: float = 1.0) -> None:
    train_part, test_part = split(load(rows))
    evaluate(train(train_part, c=c), test_part)


@step
def flaky(report: dict[str, Any]) -> dict[str, Any]:
    if Path(os.environ[FAIL_FILE]).exists():
        raise RuntimeError("the fail file is there")
    return {**report, "checked": True}


@pipeline
def gated(rows: int = 300) -> None:
    train_part, test_part = split(load(rows))
    flaky(evaluate(train(train_part), test_part))


@step(retries=2, retry_backoff_s=0.01)
def fails_once(seed: int = 0) -> list[int]:
    counter = Path(os.environ[COUNT_FILE])
    attempts = counter.read_text().count("\n") if counter.exists() else 0
    with counter.open("a") as out:
        out.write("attempt\n")
    if attempts == 0:
        raise ValueError("first attempt fails")
    return [seed, attempts + 1]


@pipeline
def retried(seed: int = 0) -> None:
    fails_once(seed)


@step(timeout_s=0.5, cache=False)
def slow(seconds: float = 30.0) -> int:
    time.sleep(seconds)
    return 1


@pipeline
def too_slow(seconds: float = 30.0) -> None:
    slow(seconds)


@step(cache=False)
def nap(label: str, seconds: float = 0.6) -> np.ndarray:
    time.sleep(seconds)
    return np.array([len(label)])


@pipeline
def two_branches() -> None:
    nap("left")
    nap("right")


@step
def boom(message: str = "boom") -> int:
    raise ValueError(message)


@pipeline
def broken(message: str = "boom") -> None:
    boom(message)


@step(cache=False)
def hold(tag: str, journal: str, gate: str = "", seconds: float = 0.4) -> str:
    """Note when it starts and ends in ``journal``; waits for ``gate`` to exist first, if given."""
    with open(journal, "a") as handle:
        handle.write(f"start {tag} {time.time()}\n")
    deadline = time.time() + 60
    while gate and not Path(gate).exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    with open(journal, "a") as handle:
        handle.write(f"end {tag} {time.time()}\n")
    return tag


@pipeline
def held(tag: str, journal: str, gate: str = "", seconds: float = 0.4) -> None:
    hold(tag, journal, gate, seconds)


@step
def count_up(value: int = 0) -> int:
    print(f"counting from {value}")
    return value + 1


@pipeline
def counting(start: int = 0, steps: int = 3) -> None:
    """``steps`` quick steps in a chain, each printing a line: nodes count_up, count_up_2, ..."""
    value = count_up(start)
    for _ in range(steps - 1):
        value = count_up(value)


CALLS = 0  # how often `fresh` ran in this process


@step(cache=False)
def fresh(tag: str = "") -> list[int]:
    """The worker's pid, and how many times `fresh` ran in it: 1 in a process of its own."""
    global CALLS
    CALLS += 1
    return [os.getpid(), CALLS]
