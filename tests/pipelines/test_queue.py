"""Team queues end to end: runs wait for their namespace's quota and start in priority order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.client import Client
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.pipelines.launcher import run_pipeline
from shipyard.pipelines.runner import RunResult
from tests.conftest import OTHER, TEAM
from tests.pipelines import sample_pipelines as sample

pytestmark = pytest.mark.slow


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Submitted:
    """Pipeline runs started in threads, as several users' terminals would."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.results: dict[str, RunResult] = {}
        self.threads: list[threading.Thread] = []

    def submit(self, tag: str, namespace: str, priority: int = 0, **params: Any) -> None:
        def go() -> None:
            pipeline_params = {"tag": tag, **params}
            self.results[tag] = run_pipeline(
                sample.held, pipeline_params, namespace=namespace, client=self.client, priority=priority
            )

        thread = threading.Thread(target=go, name=f"run-{tag}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), f"{thread.name} did not finish"


@pytest.fixture
def lab(client: Client, teams: tuple[str, str]) -> Iterator[Submitted]:
    submitted = Submitted(client)
    yield submitted
    for path in list(Path().glob("*.gate")):
        path.unlink()


def runs(client: Client, namespace: str, status: str) -> list[dict[str, Any]]:
    return client.list_pipeline_runs(status=status, namespace=namespace)


def journal(path: Path) -> list[tuple[str, str, float]]:
    lines = [line.split() for line in path.read_text().splitlines()]
    return [(kind, tag, float(at)) for kind, tag, at in lines]


def test_one_run_at_a_time_in_priority_order_and_other_teams_unblocked(lab: Submitted, tmp_path: Path) -> None:
    client = lab.client
    client.set_quota(concurrent_runs=1, namespace=TEAM)
    log, gate = tmp_path / "journal.txt", tmp_path / "open.gate"
    lab.submit("blocker", TEAM, journal=str(log), gate=str(gate))
    wait_for(lambda: len(runs(client, TEAM, "running")) == 1, "the first run to be admitted")
    for number, (tag, priority) in enumerate((("low", 1), ("high", 5), ("mid", 3)), start=1):
        lab.submit(tag, TEAM, priority=priority, journal=str(log))
        wait_for(lambda n=number: len(runs(client, TEAM, "queued")) == n, f"{tag} to be queued")  # type: ignore[misc]

    queue = client.pipeline_queue(namespace=TEAM)
    assert [run["params"]["tag"] for run in queue["queued"]] == ["high", "mid", "low"]
    assert (queue["running"], queue["quota"]["concurrent_runs"]) == (1, 1)

    # Team B is not held up by team A's full queue.
    other = run_pipeline(sample.held, {"tag": "other", "journal": str(tmp_path / "other.txt")}, namespace=OTHER, client=client)
    assert other.status == "succeeded"
    assert len(runs(client, TEAM, "queued")) == 3, "team A's runs still wait while team B's ran"

    gate.touch()
    lab.join()
    assert {tag: result.status for tag, result in lab.results.items()} == dict.fromkeys(
        ("blocker", "low", "high", "mid"), "succeeded"
    )
    events = journal(log)
    starts = [tag for kind, tag, _ in events if kind == "start"]
    assert starts == ["blocker", "high", "mid", "low"]
    # One at a time: every run ends before the next one starts.
    assert [kind for kind, _, _ in events] == ["start", "end"] * 4
    assert client.pipeline_queue(namespace=TEAM)["queued"] == []


def test_a_queued_run_can_be_cancelled_and_never_starts(lab: Submitted, tmp_path: Path) -> None:
    client = lab.client
    client.set_quota(concurrent_runs=1, namespace=TEAM)
    log, gate = tmp_path / "journal.txt", tmp_path / "open.gate"
    lab.submit("blocker", TEAM, journal=str(log), gate=str(gate))
    wait_for(lambda: len(runs(client, TEAM, "running")) == 1, "the first run to be admitted")
    lab.submit("doomed", TEAM, journal=str(log))
    wait_for(lambda: len(runs(client, TEAM, "queued")) == 1, "the second run to be queued")
    doomed = runs(client, TEAM, "queued")[0]
    cancelled = client.cancel_pipeline_run(doomed["id"], namespace=TEAM)
    assert (cancelled["status"], cancelled["started_at"]) == ("cancelled", None)
    gate.touch()
    lab.join()
    assert lab.results["doomed"].status == "cancelled"
    assert [tag for kind, tag, _ in journal(log) if kind == "start"] == ["blocker"]


def test_a_running_run_can_be_cancelled(lab: Submitted, tmp_path: Path) -> None:
    client = lab.client
    log, gate = tmp_path / "journal.txt", tmp_path / "never.gate"
    lab.submit("stuck", TEAM, journal=str(log), gate=str(gate))
    wait_for(log.exists, "the step to start")
    client.cancel_pipeline_run(runs(client, TEAM, "running")[0]["id"], namespace=TEAM)
    lab.join()
    assert lab.results["stuck"].status == "cancelled"
    assert "end" not in log.read_text(), "the step was stopped, not waited for"


def test_resource_quotas_admit_what_fits_and_refuse_what_never_can(client: Client, teams: tuple[str, str]) -> None:
    client.set_quota(cpu=1.5, memory_mb=1024, concurrent_runs=10, namespace=TEAM)
    first = client.create_pipeline_run("p", params={}, graph={}, resources={"cpu": 1, "memory_mb": 512}, namespace=TEAM)
    second = client.create_pipeline_run("p", params={}, graph={}, resources={"cpu": 1}, namespace=TEAM)
    small = client.create_pipeline_run("p", params={}, graph={}, resources={"cpu": 0.5}, namespace=TEAM)
    assert (first["status"], second["status"]) == ("running", "queued")
    assert small["status"] == "queued", "strict order: nothing jumps a run that does not fit yet"
    usage = client.pipeline_queue(namespace=TEAM)
    assert usage["used"] == {"cpu": 1.0, "memory_mb": 512.0, "gpu": 0.0}
    client.update_pipeline_run(first["id"], status="succeeded", namespace=TEAM)
    assert client.get_pipeline_run(second["id"], namespace=TEAM)["status"] == "running"
    assert client.get_pipeline_run(small["id"], namespace=TEAM)["status"] == "running", "1 + 0.5 CPU fits 1.5"
    with pytest.raises(InvalidInput, match=r"asks for 4 cpu but namespace .team-a. has a quota of 1\.5"):
        client.create_pipeline_run("p", params={}, graph={}, resources={"cpu": 4}, namespace=TEAM)
    client.remove_quota(namespace=TEAM)
    assert client.pipeline_queue(namespace=TEAM)["quota"] is None


def test_only_platform_admins_set_quotas(client: Client, teams: tuple[str, str], live_url: str) -> None:
    client.create_user("ana")
    client.grant_role("admin", user="ana", namespace=TEAM)
    token = client.create_token(user="ana")["token"]
    with Client(live_url, token=token, namespace=TEAM) as ana:
        with pytest.raises(PermissionDenied, match="only a platform admin may set namespace quotas"):
            ana.set_quota(concurrent_runs=100)
        assert ana.pipeline_queue()["quota"] is None  # but a member may read it
        with pytest.raises(NotFound):
            ana.pipeline_queue(namespace=OTHER)
