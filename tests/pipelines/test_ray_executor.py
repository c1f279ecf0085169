"""The same pipeline on the local executor and on a local Ray runtime gives the same outputs."""

from __future__ import annotations

import pytest

from shipyard.client import Client
from shipyard.pipelines.control import SdkRecorder
from shipyard.pipelines.executors.ray import RayExecutor
from shipyard.pipelines.launcher import run_pipeline
from shipyard.pipelines.runner import Runner
from tests.pipelines import sample_pipelines as sample

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="Ray is in the dev extras; install shipyard[ray]")

NS = "ml"
# ray_executor: the session's one local Ray runtime, from tests/conftest.py


def test_local_and_ray_give_identical_results(client: Client, ray_executor: RayExecutor) -> None:
    client.create_namespace(NS)
    local = run_pipeline(sample.quickstart, {"rows": 300}, namespace=NS, client=client, cache=False)
    on_ray = Runner(SdkRecorder(client, NS), ray_executor, cache=False).run(sample.quickstart, {"rows": 300})
    assert local.status == on_ray.status == "succeeded", on_ray.error
    for name, outcome in local.steps.items():
        assert on_ray.steps[name].status == "succeeded"
        digests = {output: ref["digest"] for output, ref in outcome.outputs.items()}
        assert digests == {output: ref["digest"] for output, ref in on_ray.steps[name].outputs.items()}, name
    assert on_ray.output("evaluate") == local.output("evaluate")
    runs = client.list_pipeline_runs(namespace=NS)
    assert {r["executor"] for r in runs} == {"local", "ray"}
    logs = client.read_logs(on_ray.run_id, step="train", namespace=NS)
    assert any("training on" in line["message"] for line in logs), "logs come back from Ray workers"
    used = [step["usage"] for step in client.list_step_runs(on_ray.run_id, namespace=NS)]
    assert len(used) == 4
    assert all(usage["cpu_seconds"] >= 0 and usage["max_rss_mb"] > 0 for usage in used), "Ray workers measure what steps use"


def test_failures_and_timeouts_on_ray_behave_as_locally(client: Client, ray_executor: RayExecutor) -> None:
    client.create_namespace(NS)
    runner = Runner(SdkRecorder(client, NS), ray_executor)
    failed = runner.run(sample.broken, {"message": "bad rows"})
    assert failed.status == "failed"
    assert "ValueError: bad rows" in (failed.error or "")
    slow = runner.run(sample.too_slow, {"seconds": 30.0})
    assert slow.status == "failed"
    assert "ran over its 0.5 s timeout" in (slow.error or "")
