"""The prediction log: a sample of requests, written as Parquet files off the hot path.

A request that is sampled costs the hot path one ``deque.append`` of references it
already holds; a writer thread turns what has gathered into one Parquet file per
endpoint every ``flush_seconds``. Files are laid out for partition pruning::

    <root>/namespace=<ns>/endpoint=<name>/date=<YYYY-MM-DD>/part-<ms>-<pid>-<n>.parquet

Each file is written under a dot-name and renamed into place, so readers (pyarrow
datasets, DuckDB, the monitoring loop) never see half a file: dot-files are skipped.
If the writer falls behind by more than ``max_pending`` records, new ones are dropped
and counted rather than letting memory grow.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger("shipyard.serving.gateway")

SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("namespace", pa.string(), nullable=False),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("revision", pa.int32()),
        pa.field("model", pa.string()),
        pa.field("version", pa.int32()),
        pa.field("protocol", pa.string(), nullable=False),
        pa.field("status", pa.int16(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("inputs", pa.list_(pa.list_(pa.float64()))),
        pa.field("outputs", pa.string()),  # JSON: predictions may be numbers, strings or booleans
        pa.field("error", pa.string()),
        pa.field("probabilities", pa.string()),  # JSON: one list of class probabilities per row, where the model gave them
    ]
)
MAX_PENDING = 100_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    request_id: str
    timestamp_ms: int
    namespace: str
    endpoint: str
    revision: int | None
    model: str | None
    version: int | None
    protocol: str
    status: int
    latency_ms: float
    inputs: np.ndarray[Any, Any] | None  # the validated rows; not copied, never changed after validation
    outputs: Sequence[Any] | None
    error: str | None = None
    probabilities: Sequence[Sequence[float]] | None = None  # per row, in the model's class order; None when not at hand


class PredictionLog:
    """Collects sampled records and writes them out from a background thread."""

    def __init__(
        self,
        url: str,
        *,
        flush_seconds: float = 2.0,
        max_pending: int = MAX_PENDING,
        on_written: Callable[[int, int], None] | None = None,
    ) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self.on_written = on_written  # hears (written, dropped) after each flush
        self._pending: deque[PredictionRecord] = deque()
        self._dropped = 0
        self._sequence = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()

    def add(self, record: PredictionRecord) -> None:
        """Queue a record; cheap enough for the hot path."""
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
            return
        self._pending.append(record)

    def start(self) -> None:
        # The first table Arrow builds pays for lazy set-up (about 0.1 s); pay it now, not under load.
        pq.write_table(to_table([_WARM_UP]), io.BytesIO())
        self._thread = threading.Thread(target=self._run, name="shipyard-prediction-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # storage trouble must not stop serving; the records stay queued
                log.exception("cannot write the prediction log to %s", self.url)

    def flush(self) -> int:
        """Write every queued record; returns how many were written."""
        with self._flush_lock:
            taken = [self._pending.popleft() for _ in range(len(self._pending))]
            dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning("prediction log fell behind: dropped %d sampled record(s)", dropped)
            if not taken:
                if dropped and self.on_written is not None:
                    self.on_written(0, dropped)
                return 0
            groups: dict[tuple[str, str, int], list[PredictionRecord]] = {}
            for record in taken:
                groups.setdefault((record.namespace, record.endpoint, record.timestamp_ms // DAY_MS), []).append(record)
            written = 0
            try:
                for (namespace, endpoint, day), records in groups.items():
                    self._write(namespace, endpoint, time.strftime("%Y-%m-%d", time.gmtime(day * DAY_MS / 1000)), records)
                    written += len(records)
            except Exception:
                # Put back what was not written, so the next flush tries again.
                self._pending.extendleft(reversed(taken[written:]))
                raise
            if self.on_written is not None:
                self.on_written(written, dropped)
            return written

    def _write(self, namespace: str, endpoint: str, day: str, records: list[PredictionRecord]) -> None:
        folder = f"{self.root}/namespace={namespace}/endpoint={endpoint}/date={day}"
        name = f"part-{int(time.time() * 1000)}-{os.getpid()}-{next(self._sequence)}.parquet"
        buffer = io.BytesIO()
        pq.write_table(to_table(records), buffer, compression="zstd")
        self.fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{name}.tmp"
        with self.fs.open(temporary, "wb") as out:
            out.write(buffer.getvalue())
        self.fs.mv(temporary, f"{folder}/{name}")


_WARM_UP = PredictionRecord("warm-up", 0, "", "", None, None, None, "", 0, 0.0, np.zeros((1, 1)), [0])


def to_table(records: Sequence[PredictionRecord]) -> pa.Table:
    """One Arrow table; the input rows go in as whole NumPy blocks, not value by value."""
    columns: dict[str, Any] = {
        "request_id": [r.request_id for r in records],
        "timestamp": [r.timestamp_ms for r in records],
        "namespace": [r.namespace for r in records],
        "endpoint": [r.endpoint for r in records],
        "revision": [r.revision for r in records],
        "model": [r.model for r in records],
        "version": [r.version for r in records],
        "protocol": [r.protocol for r in records],
        "status": [r.status for r in records],
        "latency_ms": [r.latency_ms for r in records],
        "inputs": _inputs(records),
        "outputs": [
            None if r.outputs is None else orjson.dumps(r.outputs, option=orjson.OPT_SERIALIZE_NUMPY).decode() for r in records
        ],
        "error": [r.error for r in records],
        "probabilities": [None if r.probabilities is None else orjson.dumps(r.probabilities).decode() for r in records],
    }
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def _inputs(records: Sequence[PredictionRecord]) -> pa.Array:
    """``list<list<double>>``: each record's rows, built from offsets over one flat array of values."""
    blocks: list[np.ndarray[Any, Any]] = []
    row_counts = np.zeros(len(records), dtype=np.int32)
    missing = np.zeros(len(records), dtype=bool)
    for i, record in enumerate(records):
        if record.inputs is None:
            missing[i] = True
            continue
        block = np.asarray(record.inputs, dtype=np.float64)
        block = block.reshape(len(block), -1)
        blocks.append(block)
        row_counts[i] = len(block)
    widths = np.concatenate([np.full(len(b), b.shape[1], dtype=np.int32) for b in blocks]) if blocks else np.zeros(0, np.int32)
    values = np.concatenate([b.ravel() for b in blocks]) if blocks else np.zeros(0)
    row_offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)
    record_offsets = np.concatenate([[0], np.cumsum(row_counts)]).astype(np.int32)
    rows = pa.ListArray.from_arrays(pa.array(row_offsets), pa.array(values, type=pa.float64()))
    return pa.ListArray.from_arrays(pa.array(record_offsets), rows, mask=pa.array(missing))


def read(url: str, *, namespace: str | None = None, endpoint: str | None = None) -> pa.Table:
    """Every record under ``url`` (optionally one namespace and endpoint), for monitoring and tests."""
    import pyarrow.dataset as ds

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        return SCHEMA.empty_table()
    dataset = ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive", schema=_with_partitions())
    condition = None
    if namespace is not None:
        condition = ds.field("namespace") == namespace
    if endpoint is not None:
        match = ds.field("endpoint") == endpoint
        condition = match if condition is None else condition & match
    return dataset.to_table(filter=condition).select(SCHEMA.names)


def _with_partitions() -> pa.Schema:
    # The partition columns repeat fields already in each file; "date" is the only one added.
    return SCHEMA.append(pa.field("date", pa.string()))
