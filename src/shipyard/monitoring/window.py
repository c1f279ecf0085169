"""A window of an endpoint's prediction log as one row per predicted instance.

The gateway logs each sampled request as one record: its validated input rows (a list of
float lists, in the served version's signature order) and its outputs (JSON, one per
row). Monitoring wants the opposite shape: one row per instance with named feature
columns, so drift, quality and per-version comparisons are plain DataFrame work.

A window is either the last ``requests`` logged requests or those of the last ``seconds``
(or both: the last N within the time span), always up to ``end_ms``. Columns:

    request_id, row, timestamp_ms, revision, version, status, latency_ms, prediction, probabilities, <features...>

Feature names come from the signature of the version that answered (``names_for``);
instances from versions without column names get ``feature_0``, ``feature_1``, ...
Failed requests (status >= 400) keep their row, with no features or prediction, so error
rates and latency can be read from the same window. ``probabilities`` holds each instance's
class probabilities (a list, in the model's class order) where the gateway logged them
(classifiers served through ONNX), else None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.errors import InvalidInput
from shipyard.serving.gateway import prediction_log
from shipyard.serving.gateway.validation import schema_from_signature
from shipyard.store.models import ModelVersion, RegisteredModel

BASE_COLUMNS = (
    "request_id", "row", "timestamp_ms", "revision", "version", "status", "latency_ms", "prediction", "probabilities",
)  # fmt: skip
NamesFor = Callable[[int | None], Sequence[str] | None]


@dataclass(frozen=True)
class Window:
    """Which part of the log to read: the last ``requests`` requests, those of the last ``seconds``, or both."""

    requests: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.requests is None and self.seconds is None:
            raise InvalidInput("a window needs requests (the last N requests) or seconds (the last S seconds), or both")
        if self.requests is not None and self.requests < 1:
            raise InvalidInput(f"window requests must be at least 1, got {self.requests}")
        if self.seconds is not None and self.seconds <= 0:
            raise InvalidInput(f"window seconds must be positive, got {self.seconds}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Window:
        data = dict(data or {})
        unknown = sorted(set(data) - {"requests", "seconds"})
        if unknown:
            raise InvalidInput(f"unknown window field(s) {unknown}: expected 'requests' and/or 'seconds'")
        requests = data.get("requests")
        seconds = data.get("seconds")
        return cls(
            requests=int(requests) if requests is not None else None,
            seconds=float(seconds) if seconds is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in {"requests": self.requests, "seconds": self.seconds}.items() if v is not None}


def read_records(url: str, namespace: str, endpoint: str, window: Window, *, end_ms: int) -> pa.Table:
    """The logged requests of one endpoint inside ``window``, oldest first."""
    table = prediction_log.read(url, namespace=namespace, endpoint=endpoint)
    if table.num_rows == 0:
        return table
    stamps = pc.cast(table["timestamp"], pa.int64())
    keep = pc.less_equal(stamps, end_ms)
    if window.seconds is not None:
        keep = pc.and_(keep, pc.greater(stamps, end_ms - int(window.seconds * 1000)))
    table = table.filter(keep)
    table = table.take(pc.sort_indices(table, sort_keys=[("timestamp", "ascending"), ("request_id", "ascending")]))
    if window.requests is not None and table.num_rows > window.requests:
        table = table.slice(table.num_rows - window.requests)
    return table


def instances(table: pa.Table, names_for: NamesFor) -> pd.DataFrame:
    """One row per predicted instance (a request without inputs: one row without features)."""
    if table.num_rows == 0:
        return pd.DataFrame(columns=list(BASE_COLUMNS))
    inputs = table["inputs"].combine_chunks()
    # A request with no rows (failed, or nothing logged) still gets one row, so errors count.
    counts = pc.fill_null(pc.list_value_length(inputs), 0).to_numpy(zero_copy_only=False)
    per_request = np.maximum(counts, 1)
    owner = np.repeat(np.arange(table.num_rows), per_request)
    row = np.arange(len(owner)) - np.repeat(np.cumsum(per_request) - per_request, per_request)
    frame = pd.DataFrame(
        {
            "request_id": np.asarray(table["request_id"].to_pylist(), dtype=object)[owner],
            "row": row,
            "timestamp_ms": pc.cast(table["timestamp"], pa.int64()).to_numpy()[owner],
            "revision": table["revision"].to_pandas().to_numpy()[owner],
            "version": table["version"].to_pandas().to_numpy()[owner],
            "status": table["status"].to_numpy()[owner],
            "latency_ms": table["latency_ms"].to_numpy()[owner],
            "prediction": _predictions(table["outputs"].to_pylist(), counts, per_request),
            "probabilities": _predictions(_column(table, "probabilities"), counts, per_request),
        }
    )
    return pd.concat([frame, _features(inputs, counts, per_request, frame["version"], names_for)], axis=1)


def _column(table: pa.Table, name: str) -> list[Any]:
    """A column's values, or None for each record where the table predates the column."""
    return table[name].to_pylist() if name in table.column_names else [None] * table.num_rows


def _predictions(outputs: list[str | None], counts: np.ndarray[Any, Any], per_request: np.ndarray[Any, Any]) -> list[Any]:
    """One value per instance from each record's JSON list (predictions, or probability lists); None where absent."""
    found: list[Any] = []
    for text, count, rows in zip(outputs, counts, per_request, strict=True):
        values = orjson.loads(text) if text else None
        if isinstance(values, list) and len(values) == count and count > 0:
            found.extend(values)
        else:
            found.extend([None] * int(rows))
    return found


def _features(
    inputs: pa.Array, counts: np.ndarray[Any, Any], per_request: np.ndarray[Any, Any], versions: pd.Series, names_for: NamesFor
) -> pd.DataFrame:
    total = int(per_request.sum())
    rows = pc.list_flatten(inputs)  # one list<double> per instance, requests without rows skipped
    if len(rows) == 0:
        return pd.DataFrame(index=range(total))
    widths = pc.list_value_length(rows).to_numpy(zero_copy_only=False)
    width = int(widths.max())
    # Where each logged instance lands among all rows (requests without inputs hold a blank row).
    has_rows = np.repeat(counts > 0, per_request)
    positions = np.flatnonzero(has_rows)
    matrix = np.full((total, width), np.nan)
    flat = pc.list_flatten(rows).to_numpy(zero_copy_only=False)
    if (widths == width).all():
        matrix[positions] = flat.reshape(len(widths), width)
    else:  # versions of different widths in one window: fill row by row
        offsets = np.concatenate([[0], np.cumsum(widths)])
        for index, position in enumerate(positions):
            matrix[position, : widths[index]] = flat[offsets[index] : offsets[index + 1]]
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for version in pd.unique(versions):
        mask = (versions == version).to_numpy() if not pd.isna(version) else versions.isna().to_numpy()
        names = names_for(None if pd.isna(version) else int(version))
        used = int(widths.max()) if names is None else len(names)
        if names is None or len(names) > width:
            names = [f"feature_{j}" for j in range(min(used, width))]
        for j, name in enumerate(names):
            column = columns.setdefault(name, np.full(total, np.nan))
            column[mask] = matrix[mask, j]
    return pd.DataFrame(columns)


def read(url: str, namespace: str, endpoint: str, window: Window, *, end_ms: int, names_for: NamesFor) -> pd.DataFrame:
    """``read_records`` then ``instances``: the window as a DataFrame."""
    return instances(read_records(url, namespace, endpoint, window, end_ms=end_ms), names_for)


def names_from_registry(session: Session, namespace: str, model: str) -> NamesFor:
    """``names_for`` over a registered model's versions: each version's signature column names."""
    found = session.execute(
        select(ModelVersion.version, ModelVersion.signature)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.namespace == namespace, RegisteredModel.name == model)
    ).all()
    names = {version: schema_from_signature(signature).names for version, signature in found}

    def names_for(version: int | None) -> Sequence[str] | None:
        return names.get(version) if version is not None else None

    return names_for
