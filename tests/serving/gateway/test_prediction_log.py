"""The prediction log: Parquet files per endpoint and day, written whole, read back as one table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord, read


def record(
    request_id: str, *, namespace: str = "team-a", endpoint: str = "ep", status: int = 200, **fields: Any
) -> PredictionRecord:
    values: dict[str, Any] = {
        "request_id": request_id,
        "timestamp_ms": int(time.time() * 1000),
        "namespace": namespace,
        "endpoint": endpoint,
        "revision": 3,
        "model": "clf",
        "version": 2,
        "protocol": "v1",
        "status": status,
        "latency_ms": 1.25,
        "inputs": np.array([[1.0, 2.5], [3.0, -4.0]]),
        "outputs": [1, 0],
        "error": None,
    }
    values.update(fields)
    return PredictionRecord(**values)


def test_records_round_trip_through_parquet(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    log.add(record("a"))
    log.add(record("b", status=422, inputs=None, outputs=None, error="instances[0] has 3 values: expected 2"))
    assert log.flush() == 2
    table = read(str(tmp_path)).sort_by("request_id").to_pylist()
    assert [r["request_id"] for r in table] == ["a", "b"]
    assert table[0]["inputs"] == [[1.0, 2.5], [3.0, -4.0]]
    assert orjson.loads(table[0]["outputs"]) == [1, 0]
    assert (table[0]["namespace"], table[0]["endpoint"], table[0]["version"], table[0]["revision"]) == ("team-a", "ep", 2, 3)
    assert table[1]["status"] == 422
    assert table[1]["inputs"] is None
    assert "expected 2" in table[1]["error"]


def test_files_are_partitioned_by_namespace_endpoint_and_day(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    log.add(record("a"))
    log.add(record("b", namespace="team-b", endpoint="other"))
    log.flush()
    day = time.strftime("%Y-%m-%d", time.gmtime())
    files = sorted(p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [f"namespace=team-a/endpoint=ep/date={day}", f"namespace=team-b/endpoint=other/date={day}"]
    assert not list(tmp_path.rglob(".*")), "no temporary file is left behind"
    assert read(str(tmp_path), namespace="team-b").column("request_id").to_pylist() == ["b"]
    assert read(str(tmp_path), namespace="team-a", endpoint="ep").column("request_id").to_pylist() == ["a"]


def test_each_file_is_a_complete_parquet_file(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path))
    for i in range(50):
        log.add(record(str(i)))
    log.flush()
    (path,) = tmp_path.rglob("*.parquet")
    assert pq.read_table(path).num_rows == 50


def test_works_on_any_fsspec_store() -> None:
    url = f"memory://prediction-log-{time.time_ns()}"
    log = PredictionLog(url)
    log.add(record("m"))
    log.flush()
    assert read(url).column("request_id").to_pylist() == ["m"]


def test_nothing_logged_reads_as_an_empty_table(tmp_path: Path) -> None:
    assert read(str(tmp_path / "never-written")).num_rows == 0


def test_records_beyond_the_backlog_limit_are_dropped_and_counted(tmp_path: Path) -> None:
    heard: list[tuple[int, int]] = []
    log = PredictionLog(str(tmp_path), max_pending=3, on_written=lambda written, dropped: heard.append((written, dropped)))
    for i in range(5):
        log.add(record(str(i)))
    assert log.flush() == 3
    assert heard == [(3, 2)]


def test_a_failed_write_keeps_the_records_for_the_next_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = PredictionLog(str(tmp_path))
    log.add(record("kept"))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr(log, "_write", broken)
        with pytest.raises(OSError, match="disk full"):
            log.flush()
    assert log.flush() == 1
    assert read(str(tmp_path)).column("request_id").to_pylist() == ["kept"]


def test_the_writer_thread_flushes_on_its_own_and_on_close(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path), flush_seconds=0.05)
    log.start()
    log.add(record("early"))
    deadline = time.monotonic() + 10
    while read(str(tmp_path)).num_rows == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert read(str(tmp_path)).num_rows == 1
    log.add(record("late"))
    log.close()
    assert sorted(read(str(tmp_path)).column("request_id").to_pylist()) == ["early", "late"]
