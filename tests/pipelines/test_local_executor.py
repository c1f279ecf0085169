"""The local executor: a fresh process per attempt, forked ahead of need, and what each attempt used."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.pipelines import materializers
from shipyard.pipelines.executors.local import LocalExecutor
from shipyard.pipelines.task import Artifact, StepResult, StepTask
from tests.pipelines import sample_pipelines as sample
from tests.pipelines.test_queue import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def local() -> Iterator[LocalExecutor]:
    executor = LocalExecutor(max_parallel=2)
    yield executor
    executor.close()


def task(step: Any, node: str, **params: Any) -> StepTask:
    return StepTask("run-1", node, 1, step, {}, params)


def finish(executor: LocalExecutor, submitted: StepTask) -> StepResult:
    handle = executor.submit(submitted)
    while not handle.done():
        executor.wait([handle], 1.0)
    return handle.result()


def spare_ready(executor: LocalExecutor) -> bool:
    return executor._spares is not None and bool(executor._spares._ready)


def test_every_attempt_runs_in_a_process_of_its_own(local: LocalExecutor) -> None:
    results = []
    for n in range(4):
        results.append(finish(local, task(sample.fresh, f"fresh_{n}")))
        wait_for(lambda: spare_ready(local), "a spare process")  # the next one starts in it
    outputs = [materializers.load(r.outputs["output"].data, r.outputs["output"].materializer) for r in results]
    assert [calls for _, calls in outputs] == [1, 1, 1, 1], "no attempt sees what an earlier one left behind"
    assert len({pid for pid, _ in outputs}) == 4
    assert os.getpid() not in {pid for pid, _ in outputs}


def test_each_attempt_reports_what_it_used(local: LocalExecutor) -> None:
    for n in range(2):
        result = finish(local, task(sample.fresh, f"fresh_{n}"))
        assert result.error is None
        assert result.usage is not None
        assert set(result.usage) == {"cpu_seconds", "max_rss_mb"}
        assert result.usage["cpu_seconds"] >= 0
        assert result.usage["max_rss_mb"] > 0
    failed = finish(local, task(sample.boom, "boom", message="no"))
    assert (failed.error, failed.usage is not None) == ("ValueError: no", True)


def test_a_spare_started_before_the_import_path_changed_is_not_used(
    local: LocalExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert finish(local, task(sample.fresh, "first")).error is None
    wait_for(lambda: spare_ready(local), "a spare process")
    (tmp_path / "late_steps.py").write_text(
        textwrap.dedent(
            """
            from shipyard.pipelines import step

            @step
            def late(value: int = 1) -> int:
                return value * 2
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        late = __import__("late_steps").late
        result = finish(local, task(late, "late", value=21))
        assert result.error is None, result.error
        assert materializers.load(result.outputs["output"].data, "json") == 42
    finally:
        sys.modules.pop("late_steps", None)


def test_a_step_in_a_spare_can_be_cancelled(local: LocalExecutor) -> None:
    assert finish(local, task(sample.fresh, "first")).error is None
    wait_for(lambda: spare_ready(local), "a spare process")
    handle = local.submit(task(sample.slow, "slow", seconds=60.0))
    assert not handle.done()
    handle.cancel()
    assert not handle.process.is_alive()


def test_closing_ends_the_spare_processes(local: LocalExecutor) -> None:
    assert finish(local, task(sample.fresh, "first")).error is None
    wait_for(lambda: spare_ready(local), "a spare process")
    assert local._spares is not None
    spares = [spare.process for spare in local._spares._ready]
    local.close()
    wait_for(lambda: not any(process.is_alive() for process in spares), "the spares to exit")
    assert local._spares._ready == []


def test_inputs_reach_a_step_started_in_a_spare(local: LocalExecutor) -> None:
    assert finish(local, task(sample.fresh, "first")).error is None
    wait_for(lambda: spare_ready(local), "a spare process")
    data, materializer, _ = materializers.dump(41, None)
    result = finish(local, StepTask("run-1", "add", 1, sample.count_up, {"value": Artifact(data, materializer)}, {}))
    assert result.error is None, result.error
    assert materializers.load(result.outputs["output"].data, result.outputs["output"].materializer) == 42
    assert [line["message"] for line in result.logs] == ["counting from 41"]
