"""``shipyard up`` runs the scheduler: an event starts a pipeline, its end starts another, and a restart runs nothing twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.client import Client
from tests.conftest import free_port
from tests.e2e.test_crash_safety import ServerProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TEAM = "team-a"
DEADLINE_S = 120.0


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerProcess]:
    monkeypatch.setenv("SHIPYARD_SCHEDULER_INTERVAL_S", "0.2")
    logs = tmp_path / "logs"
    logs.mkdir()
    process = ServerProcess(tmp_path / "home", free_port(), None, logs, extra=())
    process.start()
    yield process
    process.stop()


def wait_for_runs(client: Client, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        runs = client.list_pipeline_runs(namespace=TEAM)
        if len(runs) >= count and all(run["status"] not in ("queued", "running") for run in runs):
            return runs
        time.sleep(0.2)
    raise AssertionError(f"expected {count} finished pipeline runs, found {client.list_pipeline_runs(namespace=TEAM)}")


def test_triggers_chain_pipelines_and_a_restart_runs_nothing_twice(server: ServerProcess) -> None:
    token = (server.home / "admin.token").read_text().strip()
    with Client(server.url, token) as client:
        client.create_namespace(TEAM)
        sample = "tests.pipelines.sample_pipelines"
        client.put_schedule(
            "on-new-data", f"{sample}:quickstart", on_event={"kind": "dataset.version", "subject": "catalogue"},
            params={"rows": 120}, workdir=str(REPO), namespace=TEAM,
        )  # fmt: skip
        client.put_schedule(
            "after-quickstart", f"{sample}:two_branches", on_event={"kind": "pipeline.finished", "subject": "quickstart"},
            workdir=str(REPO), priority=2, namespace=TEAM,
        )  # fmt: skip
        client.emit_event("dataset.version", "catalogue", {"version": 2}, namespace=TEAM)

        runs = wait_for_runs(client, 2)
        assert sorted((run["pipeline"], run["status"]) for run in runs) == [
            ("quickstart", "succeeded"),
            ("two_branches", "succeeded"),
        ], server.log()
        by_pipeline = {run["pipeline"]: run for run in runs}
        assert by_pipeline["quickstart"]["params"] == {"rows": 120, "c": 1.0}
        assert by_pipeline["two_branches"]["priority"] == 2
        for schedule, pipeline in (("on-new-data", "quickstart"), ("after-quickstart", "two_branches")):
            [fire] = client.schedule_fires(schedule, namespace=TEAM)
            run = by_pipeline[pipeline]
            assert fire["pipeline_run_id"] == run["id"]
            assert run["trigger"] == f"schedule/{schedule}/{fire['id']}"
            assert run["created_by"] == "admin", "a scheduled run acts as the schedule's owner"

        deadline = time.monotonic() + 30
        while any(
            f["status"] == "launched"
            for s in ("on-new-data", "after-quickstart")
            for f in client.schedule_fires(s, namespace=TEAM)
        ):
            assert time.monotonic() < deadline, "the scheduler did not reap its finished runs"
            time.sleep(0.2)
        statuses = {s: client.schedule_fires(s, namespace=TEAM)[0]["status"] for s in ("on-new-data", "after-quickstart")}
        assert statuses == {"on-new-data": "finished", "after-quickstart": "finished"}

    server.stop()
    server.start()
    time.sleep(2.0)  # ten scheduler passes
    with Client(server.url, token) as client:
        assert len(client.list_pipeline_runs(namespace=TEAM)) == 2, "nothing ran twice after the restart"
        assert len(client.schedule_fires("on-new-data", namespace=TEAM)) == 1
        assert len(client.schedule_fires("after-quickstart", namespace=TEAM)) == 1
