"""Resource use of gateway workers on /metrics: per-process gauges, one sample per live worker, read by monitors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shipyard.monitoring.checks import resource_measures
from shipyard.serving.gateway.config import GatewayConfig
from shipyard.serving.gateway.metrics import CPU_PERCENT, RESIDENT_BYTES, GatewayMetrics
from tests.serving.gateway.fakes import FakeControlPlane
from tests.serving.gateway.test_metrics import ADMIN, MEMBER, NS, open_gateway, samples, scrape


@pytest.fixture
def control(control: FakeControlPlane) -> FakeControlPlane:
    control.add_token(MEMBER, "alice", {NS: "viewer"})
    control.add_token(ADMIN, "root", {"*": "platform-admin"})
    return control


def test_a_scrape_shows_the_workers_cpu_and_memory(control: FakeControlPlane) -> None:
    with open_gateway(control, GatewayConfig()) as gateway:
        text = scrape(gateway)
    memory = samples(text, RESIDENT_BYTES)
    assert len(memory) == 1
    assert next(iter(memory.values())) > 10 * 1024 * 1024, "a Python process with NumPy holds more than 10 MiB"
    assert len(samples(text, CPU_PERCENT)) == 1
    found = resource_measures(text)
    assert found["resource.memory_mb"] > 10
    assert found["resource.cpu_percent"] >= 0
    assert found["resource.workers"] == 1


def test_the_sampler_thread_starts_and_stops_with_the_app(control: FakeControlPlane) -> None:
    with open_gateway(control, GatewayConfig()) as gateway:
        metrics: GatewayMetrics = gateway.app.state.gateway.metrics  # type: ignore[attr-defined]
        assert metrics._sampler is not None
        assert metrics._sampler.is_alive()
    assert metrics._sampler is None


def test_each_live_worker_is_one_sample_and_a_dead_one_goes(tmp_path: Path) -> None:
    """As uvicorn's workers do: each process writes its own values; the supervisor marks dead workers."""
    worker = (
        "import os; from shipyard.serving.gateway.metrics import GatewayMetrics as M; M().sample_resources(); print(os.getpid())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = [
        subprocess.run(
            [sys.executable, "-c", worker], env=env, check=True, timeout=60, capture_output=True, text=True
        ).stdout.strip()
        for _ in range(2)
    ]
    render = textwrap.dedent(
        """
        import sys
        from prometheus_client import multiprocess
        from shipyard.serving.gateway.metrics import GatewayMetrics
        for pid in sys.argv[1:]:
            multiprocess.mark_process_dead(int(pid))
        print(GatewayMetrics().render().decode())
        """
    )

    def scraped(*dead: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", render, *dead], env=env, check=True, timeout=60, capture_output=True, text=True
        )
        return done.stdout

    text = scraped()
    by_pid = {dict(labels)["pid"] for labels in samples(text, RESIDENT_BYTES)}
    assert set(pids) <= by_pid, "one sample per worker, labelled with its pid"
    assert len(by_pid) == 3, "the two workers and the process that answered the scrape"
    assert resource_measures(text)["resource.workers"] == 3
    after = {dict(labels)["pid"] for labels in samples(scraped(pids[0]), RESIDENT_BYTES)}
    assert pids[0] not in after
    assert pids[1] in after
