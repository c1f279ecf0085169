"""Background metric batching: ``log`` returns at once, a thread ships batches.

A call to ``log`` only appends to a buffer under a lock. A sender thread wakes when the
buffer reaches ``max_batch`` points or ``interval`` seconds pass, and posts one
``log-batch`` request per batch, retrying transient failures. ``flush`` returns only
when everything logged before it is acknowledged by the server; ``close`` flushes and
stops the thread. A batch that fails for good is raised from the next ``flush``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from shipyard.client import Client
from shipyard.errors import ClientError, ShipyardError

MAX_SERVER_BATCH = 10_000


class MetricBatcher:
    def __init__(
        self,
        client: Client,
        run_id: str,
        *,
        namespace: str | None = None,
        max_batch: int = 5000,
        interval: float = 0.5,
        max_attempts: int = 8,
    ) -> None:
        if not 1 <= max_batch <= MAX_SERVER_BATCH:
            raise ValueError(f"max_batch must be 1 to {MAX_SERVER_BATCH}, got {max_batch}")
        self.client = client
        self.run_id = run_id
        self.namespace = namespace
        self.max_batch = max_batch
        self.interval = interval
        self.max_attempts = max_attempts
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        self._logged = 0  # points appended so far
        self._acked = 0  # points the server has stored
        self._flush_target = 0
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"shipyard-metrics-{run_id[:8]}", daemon=True)
        self._thread.start()

    def log(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        point = {
            "key": key,
            "value": float(value),
            "step": int(step),
            "timestamp": timestamp if timestamp is not None else int(time.time() * 1000),
        }
        with self._lock:
            if self._closed:
                raise ShipyardError("this metric batcher is closed: start a new run to log more")
            self._buffer.append(point)
            self._logged += 1
            if len(self._buffer) >= self.max_batch:
                self._lock.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every point logged so far is stored, or raise the failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._logged
            self._flush_target = max(self._flush_target, target)
            self._lock.notify_all()
            while self._acked < target and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{target - self._acked} metric points not stored after {timeout}s")
                self._lock.wait(remaining if remaining is not None else 1.0)
            self._raise_error()

    def close(self, timeout: float | None = None) -> None:
        try:
            self.flush(timeout)
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()
            self._thread.join(timeout=5)

    @property
    def pending(self) -> int:
        with self._lock:
            return self._logged - self._acked

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _ready(self) -> bool:
        if self._closed or len(self._buffer) >= self.max_batch:
            return True
        return bool(self._buffer) and self._flush_target > self._acked

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._ready():
                    self._lock.wait(self.interval)
                    if self._buffer:
                        break  # the interval passed: ship what there is
                if self._closed and not self._buffer:
                    return
                batch, self._buffer = self._buffer[: self.max_batch], self._buffer[self.max_batch :]
            try:
                self._send(batch)
            except BaseException as exc:  # keep the thread alive; report on flush
                with self._lock:
                    self._error = exc
                    self._acked += len(batch)
                    self._lock.notify_all()
                continue
            with self._lock:
                self._acked += len(batch)
                self._lock.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.1
        for attempt in range(self.max_attempts):
            try:
                self.client.log_batch(self.run_id, namespace=self.namespace, metrics=batch)
                return
            except ClientError as exc:
                # Connection failures and 5xx are worth retrying; 4xx are not.
                if exc.http_status not in (0, 500, 502, 503, 504) or attempt + 1 == self.max_attempts:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
