"""Run or resume a pipeline against a control plane: the Python entry points behind ``shipyard pipeline``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.client import Client
from shipyard.errors import InvalidInput
from shipyard.pipelines import executors
from shipyard.pipelines.control import SdkRecorder
from shipyard.pipelines.dsl import Pipeline
from shipyard.pipelines.runner import Event, Runner, RunResult


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    namespace: str | None = None,
    executor: str = "local",
    cache: bool = True,
    client: Client | None = None,
    ray_address: str | None = None,
    max_parallel: int | None = None,
    on_event: Event | None = None,
    priority: int = 0,
    trigger: str | None = None,
) -> RunResult:
    """Run ``pipeline`` with ``params``, recording it in ``namespace``; returns when the run has ended.

    When the namespace's quota is taken the run first waits in its queue (higher ``priority``
    first); ``trigger`` records what started it when no person did (a schedule).
    """
    runner, close = _runner(namespace, executor, cache, client, ray_address, max_parallel, on_event)
    try:
        return runner.run(pipeline, params, priority=priority, trigger=trigger)
    finally:
        close()


def resume_pipeline(
    run_id: str,
    *,
    namespace: str | None = None,
    executor: str = "local",
    client: Client | None = None,
    ray_address: str | None = None,
    max_parallel: int | None = None,
    on_event: Event | None = None,
) -> RunResult:
    """A new run of a failed run's pipeline that reuses every step that finished there."""
    runner, close = _runner(namespace, executor, True, client, ray_address, max_parallel, on_event)
    try:
        return runner.resume(run_id)
    finally:
        close()


def _runner(
    namespace: str | None,
    executor: str,
    cache: bool,
    client: Client | None,
    ray_address: str | None,
    max_parallel: int | None,
    on_event: Event | None,
) -> tuple[Runner, Any]:
    owned = client is None
    connection = client or Client(namespace=namespace)
    engine = executors.create(executor, max_parallel=max_parallel, ray_address=ray_address)
    runner = Runner(SdkRecorder(connection, namespace), engine, cache=cache, on_event=on_event)

    def close() -> None:
        engine.close()
        if owned:
            connection.close()

    return runner, close


def import_pipeline(target: str) -> Pipeline:
    """``package.module:name`` or ``path/to/file.py:name`` -> the ``@pipeline`` it names."""
    location, colon, name = target.rpartition(":")
    if not colon or not location or not name:
        raise InvalidInput(
            f"{target!r} names no pipeline: expected MODULE:NAME or FILE.py:NAME (e.g. examples.quickstart.pipeline:train)"
        )
    if location.endswith(".py"):
        path = Path(location).resolve()
        if not path.is_file():
            raise InvalidInput(f"no file {location}: give the path of the Python file that defines the pipeline")
        # Import it by module name from its folder, so worker processes can import it the same way.
        sys.path.insert(0, str(path.parent))
        location = path.stem
    elif "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(location)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {location} ({exc}): run from the folder it imports from") from exc
    found = getattr(module, name, None)
    if not isinstance(found, Pipeline):
        kind = "nothing" if found is None else type(found).__name__
        raise InvalidInput(f"{location}:{name} is {kind}: expected a function decorated with @pipeline")
    return found
