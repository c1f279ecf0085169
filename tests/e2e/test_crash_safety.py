"""Kill the server with SIGKILL under load, restart it, and check that nothing acknowledged was lost.

A real ``shipyard up`` process serves several client threads: some log metric batches,
some upload artifacts of a few MiB, and one upload is held open halfway. Once enough
writes are acknowledged the process is killed without warning. After a restart on the
same home and database every acknowledged write must be there, whole; unacknowledged
ones must be there entirely or not at all; no partial blob may be visible.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import httpx
import pytest

from shipyard.client import Client
from shipyard.errors import ClientError
from tests.conftest import free_port

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
METRIC_WORKERS = 4
UPLOAD_WORKERS = 2
RUNS = 3
POINTS_PER_BATCH = 50
BASE_TIMESTAMP = 1_700_000_000_000
ACKED_BATCHES_BEFORE_KILL = 5
ACKED_UPLOADS_BEFORE_KILL = 2
LOAD_DEADLINE_S = 30.0
START_DEADLINE_S = 30.0
NAMESPACE = "crash"
_BLOB_NAME = re.compile(r"^[0-9a-f]{64}$")


# -- the server process --------------------------------------------------------------


class ServerProcess:
    """``shipyard --home HOME up`` in its own session, so its whole process group can be checked."""

    def __init__(
        self,
        home: Path,
        port: int,
        database_url: str | None,
        log_dir: Path,
        *,
        extra: tuple[str, ...] = ("--no-scheduler", "--no-monitor"),
        gateway: bool = False,
    ) -> None:
        self.home = home
        self.extra = extra
        self.gateway = gateway
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_dir = log_dir
        self.env = {k: v for k, v in os.environ.items() if k != "SHIPYARD_DATABASE_URL"}
        if database_url is not None:
            self.env["SHIPYARD_DATABASE_URL"] = database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"server-{self.starts}.log"
        command = [
            str(Path(sys.executable).parent / "shipyard"),
            "--home",
            str(self.home),
            "up",
            "--port",
            str(self.port),
            *(() if self.gateway else ("--no-gateway",)),
            *self.extra,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, cwd=self.log_dir
            )
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"shipyard up exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"shipyard up did not answer /api/v1/health within {START_DEADLINE_S}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the server, reap it, and check that nothing of its group survived."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL
        assert not self._group_alive(), "a process of the killed server survived"

    def stop(self) -> None:
        """Best-effort shutdown for teardown: SIGTERM, then SIGKILL for the whole group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._group_alive():
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover - the id was reused by someone else's process
            return False
        return True


# -- the load ------------------------------------------------------------------------


class RandomStream:
    """A file-like source of random bytes, made as it is read, optionally pausing partway."""

    def __init__(self, size: int, seed: int, *, pause_after: int | None = None) -> None:
        self.size = size
        self.sent = 0
        self._random = random.Random(seed)
        self._hasher = hashlib.sha256()
        self.pause_after = pause_after
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.head = self._random.randbytes(64)
        self._pending = self.head

    def read(self, n: int = -1) -> bytes:
        if self.sent >= self.size:
            return b""
        if self.pause_after is not None and self.sent >= self.pause_after and not self.resume.is_set():
            self.paused.set()
            self.resume.wait(timeout=LOAD_DEADLINE_S)
        n = self.size - self.sent if n < 0 else min(n, self.size - self.sent)
        chunk = self._pending[:n] + self._random.randbytes(max(0, n - len(self._pending)))
        self._pending = self._pending[n:]
        self._hasher.update(chunk)
        self.sent += len(chunk)
        return chunk

    @property
    def complete(self) -> bool:
        return self.sent == self.size

    @property
    def digest(self) -> str:
        return self._hasher.hexdigest()


@dataclass
class MetricWorker:
    index: int
    run_id: str
    acked: list[int] = field(default_factory=list)
    in_flight: int | None = None
    error: BaseException | None = None

    @property
    def key(self) -> str:
        return f"loss/worker-{self.index}"

    @property
    def tag(self) -> str:
        return f"progress.worker-{self.index}"

    def points(self, batch: int) -> list[dict[str, Any]]:
        steps = range(batch * POINTS_PER_BATCH, (batch + 1) * POINTS_PER_BATCH)
        return [
            {"key": self.key, "value": step * 0.5 + self.index * 1000, "step": step, "timestamp": BASE_TIMESTAMP + step}
            for step in steps
        ]

    def expected(self, batches: list[int]) -> Counter[tuple[int, float, int]]:
        return Counter((p["step"], p["value"], p["timestamp"]) for b in batches for p in self.points(b))

    def run(self, url: str, token: str, stop: threading.Event) -> None:
        with Client(url, token, namespace=NAMESPACE, timeout=15, retries=0) as client:
            for batch in range(100_000):
                if stop.is_set():
                    return
                self.in_flight = batch
                try:
                    client.log_batch(self.run_id, metrics=self.points(batch), tags={self.tag: str(batch)})
                except Exception as exc:
                    self.error = exc
                    return
                self.acked.append(batch)
                self.in_flight = None


@dataclass
class Upload:
    run_id: str
    path: str
    stream: RandomStream
    acked_digest: str | None = None


@dataclass
class UploadWorker:
    index: int
    run_ids: list[str]
    uploads: list[Upload] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def acked(self) -> list[Upload]:
        return [u for u in self.uploads if u.acked_digest is not None]

    def run(self, url: str, token: str, stop: threading.Event) -> None:
        sizes = random.Random(self.index)
        with Client(url, token, namespace=NAMESPACE, timeout=15, retries=0) as client:
            for number in range(1_000):
                if stop.is_set():
                    return
                stream = RandomStream(sizes.randint(2 * MiB, 4 * MiB), seed=self.index * 100_000 + number)
                upload = Upload(self.run_ids[number % len(self.run_ids)], f"worker-{self.index}/upload-{number:04d}.bin", stream)
                self.uploads.append(upload)
                try:
                    answer = client.upload_artifact(upload.run_id, _as_io(stream), upload.path)
                except Exception as exc:
                    self.error = exc
                    return
                assert answer["digest"] == stream.digest, "the server stored other bytes than were sent"
                upload.acked_digest = answer["digest"]


def _as_io(stream: RandomStream) -> IO[bytes]:
    return cast(IO[bytes], stream)  # the SDK only calls read()


@dataclass
class StalledUpload:
    """An upload that sends 1 MiB and then waits: it is in flight when the kill lands."""

    run_id: str
    path: str = "stalled/half.bin"
    stream: RandomStream = field(default_factory=lambda: RandomStream(4 * MiB, seed=7, pause_after=MiB))
    error: BaseException | None = None
    answered: bool = False

    def run(self, url: str, token: str) -> None:
        with Client(url, token, namespace=NAMESPACE, timeout=15, retries=0) as client:
            try:
                client.upload_artifact(self.run_id, _as_io(self.stream), self.path)
            except Exception as exc:
                self.error = exc
                return
            self.answered = True


# -- checks --------------------------------------------------------------------------


def _temp_file_of(artifacts: Path, head: bytes) -> Path | None:
    """The upload temp file whose first bytes are ``head``, once it holds them."""
    for candidate in (artifacts / "tmp").iterdir():
        try:
            with open(candidate, "rb") as handle:
                if handle.read(len(head)) == head:
                    return candidate
        except FileNotFoundError:
            continue
    return None


def _wait_for_load(
    metric_workers: list[MetricWorker], upload_workers: list[UploadWorker], stalled: StalledUpload, artifacts: Path
) -> Path:
    deadline = time.monotonic() + LOAD_DEADLINE_S
    while time.monotonic() < deadline:
        failed = [w.error for w in [*metric_workers, *upload_workers, stalled] if w.error is not None]
        assert not failed, f"a client failed before the kill: {failed!r}"
        ready = all(len(w.acked) >= ACKED_BATCHES_BEFORE_KILL for w in metric_workers) and all(
            len(w.acked) >= ACKED_UPLOADS_BEFORE_KILL for w in upload_workers
        )
        partial = _temp_file_of(artifacts, stalled.stream.head) if stalled.stream.paused.is_set() else None
        if ready and partial is not None:
            return partial
        time.sleep(0.02)
    progress = [len(w.acked) for w in metric_workers], [len(w.acked) for w in upload_workers], stalled.stream.paused.is_set()
    pytest.fail(f"the load did not reach its targets within {LOAD_DEADLINE_S}s: {progress}")


def _is_connection_failure(error: BaseException | None) -> bool:
    return isinstance(error, ClientError) and error.http_status == 0


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


def _check_sqlite(db_path: Path) -> None:
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        connection.close()


def _check_metrics(client: Client, workers: list[MetricWorker]) -> None:
    for worker in workers:
        history = client.metric_history(worker.run_id, worker.key)
        found = Counter((p["step"], p["value"], p["timestamp"]) for p in history)
        acked = worker.expected(worker.acked)
        missing = acked - found
        assert not missing, f"worker {worker.index} lost {sum(missing.values())} acknowledged points"
        # The batch in flight at the kill is there entirely or not at all, and only once.
        in_flight = [] if worker.in_flight is None else [worker.in_flight]
        landed = bool(in_flight) and worker.expected(in_flight) & found == worker.expected(in_flight)
        assert found == worker.expected(worker.acked + in_flight if landed else worker.acked)
        # Tags rode in the same transaction as the metrics.
        tags = client.get_run(worker.run_id)["tags"]
        newest = in_flight[0] if landed else max(worker.acked)
        assert tags[worker.tag] == str(newest)


def _check_latest_metrics(client: Client, run_ids: list[str]) -> None:
    """Each run's latest-metric rows agree with its full metric history."""
    for run_id in run_ids:
        run = client.get_run(run_id)
        for latest in run["metrics"]:
            history = client.metric_history(run_id, latest["key"])
            assert history, f"run {run_id} has a latest value for {latest['key']!r} but no history"
            newest = max(history, key=lambda p: (p["step"], p["timestamp"]))
            assert (latest["step"], latest["timestamp"], latest["value"]) == (
                newest["step"],
                newest["timestamp"],
                newest["value"],
            )


def _check_artifacts(
    client: Client, run_ids: list[str], uploads: list[Upload], stalled: StalledUpload, artifacts: Path, scratch: Path
) -> None:
    attempted = {(u.run_id, u.path): u for u in uploads}
    listed: set[tuple[str, str]] = set()
    for run_id in run_ids:
        for item in client.list_artifacts(run_id):
            where = (run_id, item["path"])
            listed.add(where)
            assert where != (stalled.run_id, stalled.path), "a half-sent upload became visible"
            assert where in attempted, f"artifact {where} was never uploaded"
            upload = attempted[where]
            assert upload.stream.complete, f"artifact {where} is listed, but its bytes were never all sent"
            assert item["digest"] == upload.stream.digest
            assert item["size"] == upload.stream.size
            blob = artifacts / "sha256" / item["digest"][:2] / item["digest"][2:4] / item["digest"]
            assert blob.is_file(), f"artifact {where} points at a missing blob"
            local = client.download_artifact(run_id, item["path"], scratch / run_id / item["path"])
            assert _sha256_file(local) == item["digest"]
            assert local.stat().st_size == item["size"]
            local.unlink()
    for upload in uploads:
        if upload.acked_digest is not None:
            assert (upload.run_id, upload.path) in listed, f"acknowledged artifact {upload.path} was lost"


def _check_blob_files(artifacts: Path) -> int:
    """Every blob on disk hashes to its own name, in its own folder; no temp file is left."""
    count = 0
    for path in (artifacts / "sha256").rglob("*"):
        if path.is_dir():
            continue
        assert _BLOB_NAME.match(path.name), f"stray file in the blob store: {path}"
        assert path.parent.name == path.name[2:4]
        assert path.parent.parent.name == path.name[:2]
        assert _sha256_file(path) == path.name, f"blob {path.name} does not hash to its name"
        count += 1
    return count


def _check_new_writes(client: Client, run_ids: list[str], scratch: Path) -> None:
    run = client.create_run("crash-safety", name="after-restart")
    client.log_batch(run["id"], metrics=[{"key": "after", "value": 1.5, "step": 3}], params={"restarted": "yes"})
    client.log_batch(run_ids[0], metrics=[{"key": "after", "value": 2.5, "step": 0}])
    data = random.Random(99).randbytes(MiB + 17)
    answer = client.upload_artifact(run["id"], data, "after/restart.bin")
    assert answer["digest"] == hashlib.sha256(data).hexdigest()
    assert [(p["step"], p["value"]) for p in client.metric_history(run["id"], "after")] == [(3, 1.5)]
    assert [(p["step"], p["value"]) for p in client.metric_history(run_ids[0], "after")] == [(0, 2.5)]
    assert client.get_run(run["id"])["params"] == {"restarted": "yes"}
    local = client.download_artifact(run["id"], "after/restart.bin", scratch / "after.bin")
    assert local.read_bytes() == data


# -- the test --------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: the default SQLite file in the home; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[ServerProcess]:
    logs = tmp_path / "logs"
    logs.mkdir()
    process = ServerProcess(tmp_path / "home", free_port(), database_url, logs)
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.timeout(120)
def test_sigkill_loses_no_acknowledged_write(server: ServerProcess, database_url: str | None, tmp_path: Path) -> None:
    server.start()
    token = (server.home / "admin.token").read_text().strip()
    artifacts = server.home / "artifacts"

    with Client(server.url, token, namespace=NAMESPACE) as setup:
        setup.create_namespace(NAMESPACE)
        run_ids = [setup.create_run("crash-safety", name=f"run-{i}")["id"] for i in range(RUNS)]

    metric_workers = [MetricWorker(i, run_ids[i % RUNS]) for i in range(METRIC_WORKERS)]
    upload_workers = [UploadWorker(i, run_ids) for i in range(UPLOAD_WORKERS)]
    stalled = StalledUpload(run_ids[0])
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(server.url, token, stop), daemon=True) for w in metric_workers]
    threads += [threading.Thread(target=w.run, args=(server.url, token, stop), daemon=True) for w in upload_workers]
    threads.append(threading.Thread(target=stalled.run, args=(server.url, token), daemon=True))
    for thread in threads:
        thread.start()
    try:
        partial = _wait_for_load(metric_workers, upload_workers, stalled, artifacts)
        server.kill()
    finally:
        stalled.stream.resume.set()
        for thread in threads:
            thread.join(timeout=30)
        stop.set()
    assert not [t for t in threads if t.is_alive()], "a client thread did not finish"

    # Every client saw the server vanish; none got an answer it should not have.
    for worker in [*metric_workers, *upload_workers, stalled]:
        assert _is_connection_failure(worker.error), f"expected a connection failure, got {worker.error!r}"
    assert not stalled.answered
    # The kill left the half-sent upload behind in the temp folder, and nowhere else.
    assert partial.exists()
    if database_url is None:
        _check_sqlite(server.home / "shipyard.db")

    server.start()
    assert "Removed" in server.log(), server.log()
    assert list((artifacts / "tmp").iterdir()) == []

    uploads = [u for w in upload_workers for u in w.uploads]
    with Client(server.url, token, namespace=NAMESPACE) as client:
        all_run_ids = [r["id"] for r in client.iter_runs()]
        assert sorted(all_run_ids) == sorted(run_ids)
        _check_metrics(client, metric_workers)
        _check_latest_metrics(client, all_run_ids)
        _check_artifacts(client, all_run_ids, uploads, stalled, artifacts, tmp_path / "downloads")
        assert _check_blob_files(artifacts) >= sum(len(w.acked) for w in upload_workers)
        _check_new_writes(client, run_ids, tmp_path / "downloads")
        _check_latest_metrics(client, run_ids)

    if database_url is None:
        _check_sqlite(server.home / "shipyard.db")
