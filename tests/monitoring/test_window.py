"""Windows of a real prediction log: by requests, by seconds, both; one row per instance; failures kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.monitoring import window
from shipyard.monitoring.window import Window
from shipyard.runtime import Platform
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from tests.conftest import TEAM
from tests.monitoring.traffic import FEATURES, register

START = 1_800_000_000_000
NS, EP = "team-a", "churn"


def record(n: int, at: int, rows: list[list[float]] | None, *, status: int = 200, version: int | None = 1) -> PredictionRecord:
    inputs = np.asarray(rows, dtype=np.float64) if rows is not None else None
    outputs = [f"y{n}-{i}" for i in range(len(rows))] if rows is not None and status < 400 else None
    return PredictionRecord(
        request_id=f"r{n:03d}", timestamp_ms=at, namespace=NS, endpoint=EP, revision=3, model="churn", version=version,
        protocol="v1", status=status, latency_ms=float(n), inputs=inputs, outputs=outputs,
        error="refused" if status >= 400 else None,
    )  # fmt: skip


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Ten one-row requests, one a second, ending at START + 9 s; plus another endpoint's request."""
    log = PredictionLog(str(tmp_path / "predictions"))
    for n in range(10):
        log.add(record(n, START + n * 1000, [[float(n), float(n) * 10]]))
    log.add(replace(record(99, START, [[0.0, 0.0]]), endpoint="other"))
    log.flush()
    return str(tmp_path / "predictions")


def ids(frame: pd.DataFrame) -> list[str]:
    return list(frame["request_id"])


def no_names(version: int | None) -> None:
    return None


def test_a_window_of_requests_is_the_last_n_up_to_its_end(url: str) -> None:
    frame = window.read(url, NS, EP, Window(requests=3), end_ms=START + 9000, names_for=no_names)
    assert ids(frame) == ["r007", "r008", "r009"]
    earlier = window.read(url, NS, EP, Window(requests=3), end_ms=START + 4000, names_for=no_names)
    assert ids(earlier) == ["r002", "r003", "r004"], "requests after the window's end are left out"
    assert list(frame.columns[: len(window.BASE_COLUMNS)]) == list(window.BASE_COLUMNS)


def test_a_window_of_seconds_and_one_of_both(url: str) -> None:
    frame = window.read(url, NS, EP, Window(seconds=3.5), end_ms=START + 9000, names_for=no_names)
    assert ids(frame) == ["r006", "r007", "r008", "r009"]
    both = window.read(url, NS, EP, Window(requests=2, seconds=3.5), end_ms=START + 9000, names_for=no_names)
    assert ids(both) == ["r008", "r009"]
    wide = window.read(url, NS, EP, Window(requests=50, seconds=3.5), end_ms=START + 9000, names_for=no_names)
    assert ids(wide) == ["r006", "r007", "r008", "r009"], "the time span bounds a window of many requests"
    empty = window.read(url, NS, EP, Window(seconds=1), end_ms=START + 60_000, names_for=no_names)
    assert empty.empty
    assert list(empty.columns) == list(window.BASE_COLUMNS)


def test_an_empty_or_missing_log_gives_an_empty_window(tmp_path: Path) -> None:
    frame = window.read(str(tmp_path / "nothing"), NS, EP, Window(requests=5), end_ms=START, names_for=no_names)
    assert frame.empty


def test_multi_row_requests_become_one_row_per_instance(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "p"))
    log.add(record(1, START, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    log.add(record(2, START + 1, [[7.0, 8.0]]))
    log.flush()
    frame = window.read(str(tmp_path / "p"), NS, EP, Window(requests=10), end_ms=START + 10, names_for=lambda v: ["a", "b"])
    assert list(frame["request_id"]) == ["r001", "r001", "r001", "r002"]
    assert list(frame["row"]) == [0, 1, 2, 0]
    assert frame[["a", "b"]].to_numpy().tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    assert list(frame["prediction"]) == ["y1-0", "y1-1", "y1-2", "y2-0"]
    assert set(frame["revision"]) == {3}
    assert set(frame["latency_ms"]) == {1.0, 2.0}


def test_failed_requests_keep_one_row_without_features(tmp_path: Path) -> None:
    log = PredictionLog(str(tmp_path / "p"))
    log.add(record(1, START, [[1.0, 2.0]]))
    log.add(record(2, START + 1, None, status=401, version=None))
    log.add(record(3, START + 2, [[9.0, 9.0], [8.0, 8.0]], status=500))  # the model failed on validated rows
    log.flush()
    frame = window.read(str(tmp_path / "p"), NS, EP, Window(requests=10), end_ms=START + 10, names_for=lambda v: ["a", "b"])
    assert list(frame["status"]) == [200, 401, 500, 500]
    refused = frame[frame["request_id"] == "r002"]
    assert len(refused) == 1
    assert np.isnan(refused["a"].iloc[0])
    assert pd.isna(refused["prediction"].iloc[0])
    failed = frame[frame["request_id"] == "r003"]
    assert failed[["a", "b"]].to_numpy().tolist() == [[9.0, 9.0], [8.0, 8.0]]
    assert failed["prediction"].isna().all()


def test_versions_without_column_names_get_numbered_features(url: str) -> None:
    frame = window.read(url, NS, EP, Window(requests=2), end_ms=START + 9000, names_for=no_names)
    assert frame[["feature_0", "feature_1"]].to_numpy().tolist() == [[8.0, 80.0], [9.0, 90.0]]


def test_names_come_from_each_versions_signature(platform: Platform, teams: tuple[str, str], tmp_path: Path) -> None:
    frame = pd.DataFrame(np.arange(12, dtype=np.float64).reshape(3, 4), columns=list(FEATURES))
    first = register(platform, TEAM, "churn", frame)
    second = register(platform, TEAM, "churn", frame.rename(columns={"age": "years"}))
    with platform.db.session() as session:
        names_for = window.names_from_registry(session, TEAM, "churn")
    assert list(names_for(first) or []) == list(FEATURES)
    assert list(names_for(second) or []) == ["years", *FEATURES[1:]]
    assert names_for(None) is None
    assert names_for(99) is None

    log = PredictionLog(str(tmp_path / "p"))
    log.add(record(1, START, [[1.0, 2.0, 3.0, 4.0]], version=first))
    log.add(record(2, START + 1, [[5.0, 6.0, 7.0, 8.0]], version=second))
    log.flush()
    read = window.read(str(tmp_path / "p"), NS, EP, Window(requests=10), end_ms=START + 10, names_for=names_for)
    assert list(read["age"].fillna(-1)) == [1.0, -1]
    assert list(read["years"].fillna(-1)) == [-1, 5.0]
    assert list(read["visits"]) == [4.0, 8.0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs requests"),
        ({"requests": 0}, "at least 1"),
        ({"seconds": -1.0}, "positive"),
    ],
)
def test_bad_windows_are_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Window(**fields)  # type: ignore[arg-type]


def test_windows_read_from_dicts_and_back() -> None:
    assert Window.from_dict({"requests": 5, "seconds": 60}).to_dict() == {"requests": 5, "seconds": 60.0}
    assert Window.from_dict({"seconds": 30}) == Window(seconds=30.0)
    with pytest.raises(InvalidInput, match="unknown window field"):
        Window.from_dict({"rows": 5})
