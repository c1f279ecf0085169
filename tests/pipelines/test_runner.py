"""The runner against a real control plane, with the local executor (worker processes)."""

from __future__ import annotations

import collections
import importlib
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from shipyard.client import Client
from shipyard.errors import InvalidInput
from shipyard.pipelines import executors
from shipyard.pipelines.control import SdkRecorder
from shipyard.pipelines.launcher import resume_pipeline, run_pipeline
from shipyard.pipelines.runner import Runner, RunResult
from tests.pipelines import sample_pipelines as sample
from tests.pipelines.test_queue import wait_for

pytestmark = pytest.mark.slow

NS = "ml"


@pytest.fixture
def ml(client: Client) -> Client:
    client.create_namespace(NS)
    return client


def steps_by_name(client: Client, run_id: str) -> dict[str, dict[str, Any]]:
    """The last attempt of each step."""
    found: dict[str, dict[str, Any]] = {}
    for record in client.list_step_runs(run_id, namespace=NS):
        if record["step"] not in found or record["attempt"] > found[record["step"]]["attempt"]:
            found[record["step"]] = record
    return found


def test_a_pipeline_runs_end_to_end_and_is_recorded(ml: Client) -> None:
    result = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml)
    assert result.status == "succeeded", result.error
    report = result.output("evaluate")
    assert report["rows"] == 75
    assert 0.8 < report["accuracy"] <= 1.0
    run = ml.get_pipeline_run(result.run_id, namespace=NS)
    assert run["status"] == "succeeded"
    assert run["params"] == {"rows": 300, "c": 1.0}
    steps = steps_by_name(ml, result.run_id)
    assert set(steps) == {"load", "split", "train", "evaluate"}
    assert {s["status"] for s in steps.values()} == {"succeeded"}
    assert steps["split"]["outputs"].keys() == {"train", "test"}
    assert steps["train"]["inputs"]["frame"]["digest"] == steps["split"]["outputs"]["train"]["digest"]
    assert steps["train"]["outputs"]["output"]["materializer"] == "sklearn.skops"


def test_an_unchanged_rerun_is_served_from_cache(ml: Client) -> None:
    first = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml)
    second = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml)
    assert second.status == "succeeded"
    assert {s.status for s in second.steps.values()} == {"cached"}
    assert second.output("evaluate") == first.output("evaluate")
    third = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml, cache=False)
    assert {s.status for s in third.steps.values()} == {"succeeded"}


def test_a_changed_parameter_reruns_that_step_and_what_follows(ml: Client) -> None:
    run_pipeline(sample.quickstart, {"rows": 300, "c": 1.0}, namespace=NS, client=ml)
    changed = run_pipeline(sample.quickstart, {"rows": 300, "c": 0.1}, namespace=NS, client=ml)
    statuses = {name: s.status for name, s in changed.steps.items()}
    assert statuses == {"load": "cached", "split": "cached", "train": "succeeded", "evaluate": "succeeded"}


def test_a_code_change_reruns_that_step_and_those_downstream_only(
    ml: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = textwrap.dedent(
        """
        from shipyard.pipelines import pipeline, step

        @step
        def numbers(n: int = 5) -> list[int]:
            return list(range(n))

        @step
        def doubled(values: list[int]) -> list[int]:
            return [2 * v for v in values]

        @step
        def total(values: list[int]) -> int:
            return sum(values)

        @step
        def count(values: list[int]) -> int:
            return len(values)

        @pipeline
        def chain(n: int = 5) -> None:
            values = numbers(n)
            total(doubled(values))
            count(values)
        """
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "chain_v1.py").write_text(source)
    (tmp_path / "chain_v2.py").write_text(source.replace("[2 * v for v in values]", "[3 * v for v in values]"))
    first = run_pipeline(importlib.import_module("chain_v1").chain, namespace=NS, client=ml)
    assert first.output("total") == 20
    second = run_pipeline(importlib.import_module("chain_v2").chain, namespace=NS, client=ml)
    statuses = {name: s.status for name, s in second.steps.items()}
    assert statuses == {"numbers": "cached", "doubled": "succeeded", "total": "succeeded", "count": "cached"}
    assert second.output("total") == 30
    for name in ("chain_v1", "chain_v2"):
        sys.modules.pop(name, None)


def test_a_failed_step_fails_the_run_and_resume_finishes_it(ml: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_file = tmp_path / "fail"
    fail_file.write_text("x")
    monkeypatch.setenv(sample.FAIL_FILE, str(fail_file))
    failed = run_pipeline(sample.gated, namespace=NS, client=ml)
    assert failed.status == "failed"
    assert "step 'flaky' failed" in (failed.error or "")
    assert "RuntimeError: the fail file is there" in (failed.error or "")
    assert f"shipyard pipeline resume {failed.run_id} -n {NS}" in (failed.error or "")
    assert ml.get_pipeline_run(failed.run_id, namespace=NS)["status"] == "failed"
    error_lines = [line for line in ml.read_logs(failed.run_id, step="flaky", namespace=NS) if line["level"] == "ERROR"]
    assert any("RuntimeError" in line["message"] for line in error_lines)

    fail_file.unlink()
    resumed = resume_pipeline(failed.run_id, namespace=NS, client=ml)
    assert resumed.status == "succeeded", resumed.error
    statuses = {name: s.status for name, s in resumed.steps.items()}
    assert statuses == {"load": "cached", "split": "cached", "train": "cached", "evaluate": "cached", "flaky": "succeeded"}
    old_steps = steps_by_name(ml, failed.run_id)
    for name, record in steps_by_name(ml, resumed.run_id).items():
        if name != "flaky":
            assert record["cached_from"] == old_steps[name]["id"], name
    assert ml.get_pipeline_run(resumed.run_id, namespace=NS)["resumed_from"] == failed.run_id
    assert resumed.output("flaky")["checked"] is True


def test_only_failed_runs_can_be_resumed(ml: Client) -> None:
    done = run_pipeline(sample.quickstart, {"rows": 200}, namespace=NS, client=ml)
    with pytest.raises(InvalidInput, match="only failed or cancelled runs"):
        resume_pipeline(done.run_id, namespace=NS, client=ml)


def test_retries_with_backoff(ml: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sample.COUNT_FILE, str(tmp_path / "count"))
    result = run_pipeline(sample.retried, {"seed": 7}, namespace=NS, client=ml)
    assert result.status == "succeeded", result.error
    assert result.output("fails_once") == [7, 2]
    attempts = [(r["attempt"], r["status"]) for r in ml.list_step_runs(result.run_id, namespace=NS)]
    assert sorted(attempts) == [(1, "failed"), (2, "succeeded")]


def test_a_step_over_its_timeout_is_stopped(ml: Client) -> None:
    result = run_pipeline(sample.too_slow, namespace=NS, client=ml)
    assert result.status == "failed"
    assert "ran over its 0.5 s timeout" in (result.error or "")


def test_independent_branches_run_at_the_same_time(ml: Client) -> None:
    result = run_pipeline(sample.two_branches, namespace=NS, client=ml, max_parallel=2)
    assert result.status == "succeeded"
    steps = steps_by_name(ml, result.run_id)
    left, right = steps["nap"], steps["nap_2"]
    # Each sleeps 0.6 s; run one after the other, their recorded intervals could not overlap.
    assert left["started_at"] < right["finished_at"]
    assert right["started_at"] < left["finished_at"]


def test_step_logs_are_structured_and_tagged(ml: Client) -> None:
    result = run_pipeline(sample.quickstart, {"rows": 250}, namespace=NS, client=ml, cache=False)
    lines = ml.read_logs(result.run_id, namespace=NS)
    printed = [line for line in lines if line["step"] == "load" and "loaded 569 rows" in line["message"]]
    assert printed
    assert printed[0]["attempt"] == 1
    assert printed[0]["level"] == "INFO"
    logged = [line for line in ml.read_logs(result.run_id, step="train", namespace=NS) if "training on" in line["message"]]
    assert logged
    assert logged[0]["extra"]["logger"] == "sample"
    assert all(line["step"] == "train" for line in ml.read_logs(result.run_id, step="train", namespace=NS))


def plausible_usage(record: dict[str, Any]) -> bool:
    usage = record.get("usage") or {}
    return set(usage) == {"cpu_seconds", "max_rss_mb"} and usage["cpu_seconds"] >= 0 and usage["max_rss_mb"] > 0


def test_each_attempt_records_what_it_used(ml: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml, cache=False)
    assert result.status == "succeeded", result.error
    records = ml.list_step_runs(result.run_id, namespace=NS)
    assert [r["step"] for r in records if not plausible_usage(r)] == []
    assert all(r["started_at"] <= r["finished_at"] for r in records)
    # A failed attempt used something too.
    monkeypatch.setenv(sample.COUNT_FILE, str(tmp_path / "count"))
    retried = run_pipeline(sample.retried, {"seed": 3}, namespace=NS, client=ml)
    attempts = ml.list_step_runs(retried.run_id, namespace=NS)
    assert sorted((r["attempt"], r["status"], plausible_usage(r)) for r in attempts) == [
        (1, "failed", True),
        (2, "succeeded", True),
    ]
    # Reused outputs ran nowhere: nothing is recorded as used.
    cached = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=ml)
    assert {r["status"]: r["usage"] for r in ml.list_step_runs(cached.run_id, namespace=NS)} == {"cached": None}


class CountingRecorder(SdkRecorder):
    """Counts the calls the runner makes to the control plane."""

    def __init__(self, client: Client) -> None:
        super().__init__(client, NS)
        self.calls: collections.Counter[str] = collections.Counter()

    def record_step(self, run_id: str, step: str, attempt: int, **fields: Any) -> dict[str, Any]:
        self.calls[f"record_step:{fields.get('status')}"] += 1
        return super().record_step(run_id, step, attempt, **fields)

    def record_cached(self, run_id: str, step: str, attempt: int, **fields: Any) -> dict[str, Any] | None:
        self.calls["record_cached"] += 1
        return super().record_cached(run_id, step, attempt, **fields)

    def put_blob(self, data: bytes) -> str:
        self.calls["put_blob"] += 1
        return super().put_blob(data)


def test_a_quick_step_is_reported_once_with_its_output_and_logs(ml: Client) -> None:
    local = executors.create("local")
    try:
        recorder = CountingRecorder(ml)
        first = Runner(recorder, local).run(sample.counting, {"start": 10, "steps": 3})
        assert (first.status, first.output("count_up_3")) == ("succeeded", 13)
        # One request per step: the cache lookup; and one report of the finished attempt, outputs included.
        assert recorder.calls["record_cached"] == 3
        assert recorder.calls["record_step:succeeded"] == 3
        assert recorder.calls["put_blob"] == 0
        records = ml.list_step_runs(first.run_id, namespace=NS)
        assert [(r["step"], r["status"]) for r in records] == [
            ("count_up", "succeeded"),
            ("count_up_2", "succeeded"),
            ("count_up_3", "succeeded"),
        ]
        assert all(r["cache_key"] and r["executor"] == "local" and r["started_at"] for r in records)
        assert records[1]["inputs"]["value"]["digest"] == records[0]["outputs"]["output"]["digest"]
        lines = [line["message"] for line in ml.read_logs(first.run_id, namespace=NS)]
        assert lines == ["counting from 10", "counting from 11", "counting from 12"]

        recorder.calls.clear()
        again = Runner(recorder, local).run(sample.counting, {"start": 10, "steps": 3})
        assert {s.status for s in again.steps.values()} == {"cached"}
        assert dict(recorder.calls) == {"record_cached": 3}, "a cache hit is one request"
    finally:
        local.close()


def test_a_long_step_is_recorded_as_running_while_it_runs(ml: Client, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    params = {"tag": "t", "journal": str(tmp_path / "journal"), "gate": str(gate), "seconds": 0.0}
    done: list[RunResult] = []
    worker = threading.Thread(target=lambda: done.append(run_pipeline(sample.held, params, namespace=NS, client=ml)))
    worker.start()
    try:
        wait_for(lambda: bool(ml.list_pipeline_runs(namespace=NS)), "the run to start")
        run_id = ml.list_pipeline_runs(namespace=NS)[0]["id"]
        wait_for(lambda: [s["status"] for s in ml.list_step_runs(run_id, namespace=NS)] == ["running"], "hold to be recorded")
        running = ml.list_step_runs(run_id, namespace=NS)[0]
        assert (bool(running["cache_key"]), bool(running["started_at"]), running["finished_at"]) == (True, True, None)
    finally:
        gate.write_text("open")
        worker.join(timeout=60)
    assert [(r.status, r.error) for r in done] == [("succeeded", None)]
    finished = ml.list_step_runs(run_id, namespace=NS)
    assert [(s["id"], s["status"], s["started_at"]) for s in finished] == [(running["id"], "succeeded", running["started_at"])]
    assert plausible_usage(finished[0])


class CancelledMeanwhile(SdkRecorder):
    """Someone cancels the run just before its first step's report arrives."""

    def record_step(self, run_id: str, step: str, attempt: int, **fields: Any) -> dict[str, Any]:
        if fields.get("status") == "succeeded":
            self.client.cancel_pipeline_run(run_id, namespace=self.namespace)
        return super().record_step(run_id, step, attempt, **fields)


def test_a_run_cancelled_while_a_step_ends_ends_cancelled(ml: Client) -> None:
    local = executors.create("local")
    try:
        result = Runner(CancelledMeanwhile(ml, NS), local).run(sample.counting, {"start": 0, "steps": 3})
    finally:
        local.close()
    assert (result.status, result.error) == ("cancelled", "cancelled while running")
    run = ml.get_pipeline_run(result.run_id, namespace=NS)
    assert (run["status"], run["error"]) == ("cancelled", "cancelled by request")
    assert ml.list_step_runs(result.run_id, namespace=NS) == []
