"""Gateway worker processes follow the endpoints' replicas.

The unit tests drive ``WorkerScaler`` against a stand-in for uvicorn's supervisor that
handles SIGTTIN / SIGTTOU when told to; the end-to-end test runs a real ``shipyard
gateway`` against a real control plane and counts its worker processes in /proc.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.cli.gateway import METRICS_DIR_VARIABLE, metrics_directory
from shipyard.client import Client
from shipyard.serving.gateway.scaler import WorkerScaler, target_workers
from tests.conftest import free_port
from tests.serving.gateway.fakes import breast_cancer_models
from tests.serving.gateway.test_e2e import wait_for

NS = "team-a"


def endpoint(name: str, replicas_min: int | None, namespace: str = NS) -> dict[str, Any]:
    entry: dict[str, Any] = {"namespace": namespace, "name": name, "routes": []}
    if replicas_min is not None:
        entry["replicas"] = {"min": replicas_min, "max": replicas_min}
    return entry


# -- the target ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mins", "fewest", "most", "expected"),
    [
        ([], 2, 8, 2),  # no endpoints: the workers at start
        ([1, 1], 2, 8, 2),  # never fewer than the fewest kept
        ([1, 5, 3], 2, 8, 5),  # the most demanding endpoint
        ([12], 2, 8, 8),  # capped by the most
        ([3], 4, 2, 4),  # a maximum below the fewest: the fewest wins
        ([None, 1], 1, 8, 1),  # an endpoint without replicas counts as one
        ([None], 3, 8, 3),
    ],
)
def test_target_is_the_largest_replicas_min_clamped(mins: list[int | None], fewest: int, most: int, expected: int) -> None:
    document = {"endpoints": [endpoint(f"e{i}", m) for i, m in enumerate(mins)]}
    assert target_workers(document, fewest=fewest, most=most).count == expected


def test_target_names_the_endpoint_that_asks() -> None:
    document = {"endpoints": [endpoint("small", 2), endpoint("clf", 3), endpoint("other", 3, namespace="team-b")]}
    assert target_workers(document, fewest=1, most=8).reason == "for endpoint team-a/clf replicas min 3"
    capped = target_workers({"endpoints": [endpoint("clf", 12)]}, fewest=1, most=8)
    assert capped.reason == "for endpoint team-a/clf replicas min 12, capped by SHIPYARD_GATEWAY_MAX_WORKERS=8"
    assert "SHIPYARD_GATEWAY_WORKERS=2" in target_workers({"endpoints": []}, fewest=2, most=8).reason


def test_malformed_replicas_count_as_one() -> None:
    entries = [{"namespace": NS, "name": "a", "replicas": None}, {"namespace": NS, "name": "b", "replicas": {"min": "3"}}]
    assert target_workers({"endpoints": entries}, fewest=1, most=8).count == 1
    assert target_workers({}, fewest=1, most=8).count == 1


# -- the scaler against stand-ins ---------------------------------------------------------


@dataclass
class Worker:
    pid: int | None


@dataclass
class FakeSupervisor:
    """uvicorn's Multiprocess as the scaler sees it; signals wait in ``queued`` until ``handle_signals``."""

    processes_num: int
    processes: list[Worker] = field(default_factory=list)
    queued: list[signal.Signals] = field(default_factory=list)
    sent: list[signal.Signals] = field(default_factory=list)
    running: set[int] = field(default_factory=set)  # pids of processes that have not exited
    pids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))

    def __post_init__(self) -> None:
        self.processes = [self.start_worker() for _ in range(self.processes_num)]

    def start_worker(self) -> Worker:
        worker = Worker(next(self.pids))
        assert worker.pid is not None
        self.running.add(worker.pid)
        return worker

    def send(self, signum: signal.Signals) -> None:
        self.sent.append(signum)
        self.queued.append(signum)

    def handle_signals(self) -> None:
        for signum in self.queued:
            if signum == signal.SIGTTIN:
                self.processes_num += 1
                self.processes.append(self.start_worker())
            else:
                self.processes_num -= 1
                self.processes.pop()
        self.queued.clear()


class FakeDesiredState:
    def __init__(self, *mins: int) -> None:
        self.endpoints = [endpoint(f"e{i}", m) for i, m in enumerate(mins)]
        self.failure: Exception | None = None
        self.etags_seen: list[str | None] = []
        self.polled = threading.Event()

    def desired_state(self, etag: str | None) -> Mapping[str, Any] | None:
        self.etags_seen.append(etag)
        self.polled.set()
        if self.failure is not None:
            raise self.failure
        current = str(hash(repr(self.endpoints)))
        return None if etag == current else {"etag": current, "endpoints": self.endpoints}

    def introspect_token(self, token: str) -> Mapping[str, Any]:
        raise NotImplementedError

    def model_file(self, namespace: str, model: str, version: int, *, onnx: bool) -> bytes:
        raise NotImplementedError


def scaler_for(
    control: FakeDesiredState, supervisor: FakeSupervisor, *, fewest: int = 1, most: int = 8, metrics_dir: str | None = None
) -> WorkerScaler:
    return WorkerScaler(
        control,
        supervisor,
        fewest=fewest,
        most=most,
        poll_seconds=0.01,
        metrics_dir=metrics_dir,
        send_signal=supervisor.send,
        is_running=supervisor.running.__contains__,
    )


def test_grows_and_shrinks_one_handled_signal_at_a_time(caplog: pytest.LogCaptureFixture) -> None:
    control, supervisor = FakeDesiredState(3), FakeSupervisor(processes_num=1)
    scaler = scaler_for(control, supervisor)
    with caplog.at_level(logging.INFO, logger="shipyard.serving.gateway.scaler"):
        scaler.tick()
        scaler.tick()  # the first SIGTTIN is not handled yet: a second one now could merge with it
    assert supervisor.sent == [signal.SIGTTIN]
    assert "gateway workers 1 -> 3 for endpoint team-a/e0 replicas min 3" in caplog.messages
    for _ in range(5):
        supervisor.handle_signals()
        scaler.tick()
    assert supervisor.processes_num == 3
    assert supervisor.sent == [signal.SIGTTIN, signal.SIGTTIN]

    control.endpoints = [endpoint("e0", 1)]
    for _ in range(5):
        scaler.tick()
        supervisor.handle_signals()
    assert supervisor.processes_num == 1
    assert supervisor.sent[2:] == [signal.SIGTTOU, signal.SIGTTOU]


def test_never_fewer_than_the_workers_at_start_nor_more_than_the_most() -> None:
    control, supervisor = FakeDesiredState(1), FakeSupervisor(processes_num=2)
    scaler = scaler_for(control, supervisor, fewest=2, most=3)
    scaler.tick()
    assert supervisor.sent == []
    control.endpoints = [endpoint("big", 40)]
    for _ in range(5):
        scaler.tick()
        supervisor.handle_signals()
    assert supervisor.processes_num == 3


def test_a_worker_count_changed_from_outside_is_brought_back() -> None:
    control, supervisor = FakeDesiredState(2), FakeSupervisor(processes_num=2)
    scaler = scaler_for(control, supervisor)
    scaler.tick()
    supervisor.send(signal.SIGTTIN)  # an operator's kill -TTIN
    supervisor.handle_signals()
    scaler.tick()
    supervisor.handle_signals()
    assert supervisor.processes_num == 2


def test_polls_with_the_etag() -> None:
    control, supervisor = FakeDesiredState(2), FakeSupervisor(processes_num=1)
    scaler = scaler_for(control, supervisor)
    scaler.tick()
    scaler.tick()
    assert control.etags_seen[0] is None
    assert control.etags_seen[1] is not None
    assert scaler.target.count == 2  # kept through the unchanged answer


def test_control_plane_errors_keep_the_workers_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    control, supervisor = FakeDesiredState(3), FakeSupervisor(processes_num=2)
    control.failure = httpx.ConnectError("connection refused")
    scaler = scaler_for(control, supervisor, fewest=2)
    with caplog.at_level(logging.INFO, logger="shipyard.serving.gateway.scaler"):
        scaler.tick()
        scaler.tick()
        assert supervisor.sent == []
        control.failure = None
        scaler.tick()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "connection refused" in warnings[0].getMessage()
    assert "the desired serving state is reachable again" in caplog.messages
    assert supervisor.sent == [signal.SIGTTIN]


def test_the_thread_survives_errors_and_stops() -> None:
    control, supervisor = FakeDesiredState(1), FakeSupervisor(processes_num=1)
    control.failure = RuntimeError("boom")
    scaler = scaler_for(control, supervisor)
    scaler.start()
    try:
        assert control.polled.wait(5)
        control.polled.clear()
        assert control.polled.wait(5), "the scaler should keep polling after an error"
    finally:
        scaler.stop()
    assert scaler._thread is not None
    assert not scaler._thread.is_alive()


def test_gone_workers_lose_their_live_gauges(tmp_path: Path) -> None:
    control, supervisor = FakeDesiredState(1), FakeSupervisor(processes_num=2)
    scaler = scaler_for(control, supervisor, metrics_dir=str(tmp_path))
    scaler.tick()
    kept, retired = (w.pid for w in supervisor.processes)
    for pid in (kept, retired):
        for kind in ("gauge_livesum", "gauge_all", "counter"):
            (tmp_path / f"{kind}_{pid}.db").touch()
    supervisor.processes.pop()  # retired: gone from the supervisor's list, still shutting down
    assert scaler.note_gone_workers() == []
    assert (tmp_path / f"gauge_livesum_{retired}.db").exists()
    supervisor.running.discard(retired)  # exited
    assert scaler.note_gone_workers() == [retired]
    assert scaler.note_gone_workers() == []
    removed = {f"gauge_livesum_{retired}.db"}
    everything = {f"{kind}_{pid}.db" for pid in (kept, retired) for kind in ("gauge_livesum", "gauge_all", "counter")}
    assert {p.name for p in tmp_path.iterdir()} == everything - removed


# -- the supervisor's Prometheus folder ---------------------------------------------------


def test_a_fresh_metrics_folder_is_made_and_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_DIR_VARIABLE, raising=False)
    with metrics_directory() as folder:
        assert os.environ[METRICS_DIR_VARIABLE] == folder
        assert Path(folder).name.startswith("shipyard-gateway-metrics-")
        (Path(folder) / "counter_1.db").touch()
    assert not Path(folder).exists()
    assert METRICS_DIR_VARIABLE not in os.environ


def test_the_users_metrics_folder_is_kept_and_emptied_of_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(METRICS_DIR_VARIABLE, str(tmp_path))
    (tmp_path / "counter_1.db").touch()
    (tmp_path / "notes.txt").touch()
    with metrics_directory() as folder:
        assert folder == str(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert tmp_path.is_dir()
    assert os.environ[METRICS_DIR_VARIABLE] == str(tmp_path)


# -- end to end: a real gateway and control plane -----------------------------------------

START_DEADLINE_S = 60.0
SCALE_DEADLINE_S = 20.0


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's worker processes: its children started by multiprocessing's spawn (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        parent = int(stat.rpartition(")")[2].split()[1])  # the fields after "(comm)": state, ppid, ...
        if parent == supervisor and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


@dataclass
class Predictions:
    """Requests sent back to back from a thread, with a token; every status is kept (0: no answer)."""

    url: str
    token: str
    rows: list[list[float]]
    statuses: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    response = http.post(self.url, json={"instances": self.rows})
                except httpx.TransportError:
                    self.statuses.append(0)
                    continue
                self.statuses.append(response.status_code)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts worker processes in /proc")
def test_gateway_workers_follow_replicas_min(client: Client, live_url: str, admin_token: str, tmp_path: Path) -> None:
    x, model, _ = breast_cancer_models()
    client.create_namespace(NS)
    client.register_model("bc", model, namespace=NS, training_data=x)
    client.create_endpoint("clf", namespace=NS)
    route = [{"model": "bc", "version": 1, "weight": 100}]
    client.create_revision("clf", route, namespace=NS, replicas=(3, 3))

    port = free_port()
    log = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "SHIPYARD_URL": live_url,
        "SHIPYARD_TOKEN": admin_token,
        "SHIPYARD_GATEWAY_MAX_WORKERS": "3",
        "SHIPYARD_GATEWAY_POLL_SECONDS": "0.2",
    }
    env.pop(METRICS_DIR_VARIABLE, None)
    command = [
        sys.executable,
        "-c",
        "from shipyard.cli.app import main; main()",
        "gateway",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(log, "wb") as out:
        gateway = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    predictions = Predictions(f"{url}/v1/namespaces/{NS}/endpoints/clf:predict", admin_token, x[:3].tolist())
    stream = threading.Thread(target=predictions.run, daemon=True)
    try:
        wait_for(lambda: len(worker_pids(gateway.pid)) == 3, START_DEADLINE_S, log)
        environ = Path(f"/proc/{worker_pids(gateway.pid)[0]}/environ").read_bytes().split(b"\0")
        (metrics_dir,) = [v.partition(b"=")[2].decode() for v in environ if v.startswith(METRICS_DIR_VARIABLE.encode() + b"=")]
        assert Path(metrics_dir).name.startswith("shipyard-gateway-metrics-")
        wait_for(lambda: is_ready(url), START_DEADLINE_S, log)
        stream.start()
        wait_for(lambda: 200 in predictions.statuses, SCALE_DEADLINE_S, log)

        retired = worker_pids(gateway.pid)
        for pid in retired:  # stand-ins for the live gauges a worker writes; the supervisor drops them once it is gone
            (Path(metrics_dir) / f"gauge_livesum_{pid}.db").touch()
        client.create_revision("clf", route, namespace=NS, replicas=(1, 1))
        wait_for(lambda: len(worker_pids(gateway.pid)) == 1, SCALE_DEADLINE_S, log)
        kept = worker_pids(gateway.pid)[0]
        wait_for(
            lambda: [p.name for p in Path(metrics_dir).glob("gauge_livesum_*.db")] == [f"gauge_livesum_{kept}.db"],
            SCALE_DEADLINE_S,
            log,
        )
        answered = len(predictions.statuses)
        wait_for(lambda: len(predictions.statuses) > answered + 20, SCALE_DEADLINE_S, log)  # the one worker left answers
    finally:
        predictions.stop.set()
        if stream.is_alive():
            stream.join(timeout=20)
        gateway.terminate()
        try:
            gateway.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            gateway.kill()
            gateway.wait()
    failures = [s for s in predictions.statuses if s != 200]
    assert not failures, f"{len(failures)} of {len(predictions.statuses)} requests failed: {sorted(set(failures))}"
    text = log.read_text(errors="replace")
    assert "gateway workers 1 -> 3 for endpoint team-a/clf replicas min 3" in text
    assert "gateway workers 3 -> 1" in text
    assert not Path(metrics_dir).exists(), "the gateway removes the metrics folder it made"
