"""The runner against a real control plane, with the local executor (worker processes)."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from shipyard.client import Client
from shipyard.errors import InvalidInput
from shipyard.pipelines.launcher import resume_pipeline, run_pipeline
from tests.pipelines import sample_pipelines as sample

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
