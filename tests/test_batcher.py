from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shipyard.batcher import MAX_SERVER_BATCH, MetricBatcher
from shipyard.client import Client
from shipyard.errors import ClientError, InvalidInput, NotFound, ShipyardError


class FakeClient:
    """Stands in for the SDK: records batches, and fails the first calls when told to."""

    def __init__(self, failures: Sequence[BaseException] = ()) -> None:
        self.failures = list(failures)
        self.batches: list[list[dict[str, Any]]] = []
        self.calls = 0
        self.lock = threading.Lock()

    def log_batch(self, run_id: str, *, namespace: str | None = None, metrics: Sequence[Mapping[str, Any]] = ()) -> None:
        with self.lock:
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            self.batches.append([dict(m) for m in metrics])


def _batcher(fake: FakeClient, **options: Any) -> MetricBatcher:
    return MetricBatcher(fake, "run-1", interval=0.05, **options)  # type: ignore[arg-type]


def test_flush_waits_until_every_point_is_sent_in_bounded_batches() -> None:
    fake = FakeClient()
    batcher = _batcher(fake, max_batch=7)
    for step in range(50):
        batcher.log("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
    batcher.flush()
    assert batcher.pending == 0
    sent = [point for batch in fake.batches for point in batch]
    assert [p["step"] for p in sent] == list(range(50))
    assert all(len(batch) <= 7 for batch in fake.batches)
    assert sent[3] == {"key": "loss", "value": 0.25, "step": 3, "timestamp": 1003}
    batcher.close()


def test_transient_failures_are_retried() -> None:
    fake = FakeClient([ClientError("down", status_code=503), ClientError("no route", status_code=0)])
    batcher = _batcher(fake)
    batcher.log("acc", 0.5)
    batcher.flush()
    assert fake.calls == 3
    assert fake.batches == [[{"key": "acc", "value": 0.5, "step": 0, "timestamp": fake.batches[0][0]["timestamp"]}]]
    batcher.close()


def test_a_permanent_failure_surfaces_on_flush_once() -> None:
    fake = FakeClient([NotFound("run 'run-1' does not exist")])
    batcher = _batcher(fake)
    batcher.log("acc", 0.5)
    with pytest.raises(NotFound, match="does not exist"):
        batcher.flush()
    assert fake.calls == 1
    batcher.log("acc", 0.6)
    batcher.flush()
    assert [p["value"] for batch in fake.batches for p in batch] == [0.6]
    batcher.close()


def test_client_errors_other_than_transient_are_not_retried() -> None:
    fake = FakeClient([ClientError("teapot", status_code=418)])
    batcher = _batcher(fake)
    batcher.log("acc", 0.5)
    with pytest.raises(ClientError, match="teapot"):
        batcher.flush()
    assert fake.calls == 1
    batcher.close()


def test_close_flushes_and_refuses_more_points() -> None:
    fake = FakeClient()
    batcher = _batcher(fake)
    batcher.log("acc", 0.5)
    batcher.close()
    assert sum(len(b) for b in fake.batches) == 1
    with pytest.raises(ShipyardError, match="closed"):
        batcher.log("acc", 0.7)


@pytest.mark.parametrize("size", [0, MAX_SERVER_BATCH + 1])
def test_batch_size_is_bounded(size: int) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        _batcher(FakeClient(), max_batch=size)


def test_against_the_live_server(client: Client) -> None:
    run = client.create_run("batched")
    batcher = MetricBatcher(client, run["id"], max_batch=100, interval=0.05)
    for step in range(250):
        batcher.log("loss", float(step), step=step)
    batcher.flush()
    history = client.metric_history(run["id"], "loss")
    assert [p["step"] for p in history] == list(range(250))
    batcher.log("bad key!", 1.0)
    with pytest.raises(InvalidInput, match="metric key"):
        batcher.flush()
    batcher.close()
