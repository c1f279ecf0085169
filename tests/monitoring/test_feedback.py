"""Ground truth: labels stored by request id (upsert, all or none, on SQLite and PostgreSQL) and joined to windows."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from shipyard.access.caller import Caller
from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.monitoring import feedback
from shipyard.runtime import Platform
from shipyard.serving import endpoints
from tests.conftest import OTHER, TEAM, MakeCaller


@pytest.fixture
def endpoint_id(platform: Platform, teams: tuple[str, str]) -> str:
    with platform.db.session(write=True) as session:
        return endpoints.create(session, Caller.system(), TEAM, "churn").id


def record(platform: Platform, items: list[Any], caller: Caller | None = None, namespace: str = TEAM) -> int:
    with platform.db.session(write=True) as session:
        return feedback.record(session, caller or Caller.system(), namespace, "churn", items)


def stored(platform: Platform, endpoint_id: str) -> dict[str, Any]:
    with platform.db.session() as session:
        return feedback.labels_for(session, TEAM, endpoint_id, [f"r-{i}" for i in range(20)] + ["x"])


def test_labels_are_stored_and_a_later_one_replaces_the_earlier(platform: Platform, endpoint_id: str) -> None:
    assert record(platform, [{"request_id": "r-1", "label": 1}]) == 1
    items = [{"request_id": f"r-{i}", "label": i % 2 == 0} for i in range(5)] + [{"request_id": "r-3", "label": [0, "b", 2.5]}]
    assert record(platform, items) == 5  # r-3 given twice: the last label wins
    found = stored(platform, endpoint_id)
    assert found == {"r-0": True, "r-1": False, "r-2": True, "r-3": [0, "b", 2.5], "r-4": True}
    with platform.db.session() as session:
        listed = feedback.list_for(session, Caller.system(), TEAM, "churn", limit=3)
    assert len(listed) == 3
    assert all(f.created_by == Caller.system().name for f in listed)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"request_id": "has space", "label": 1}, "is not a request id: expected 1 to 128 letters"),
        ({"request_id": "x" * 129, "label": 1}, "is not a request id"),
        ({"request_id": 12, "label": 1}, "is not a request id"),
        ({"request_id": "x", "label": {"class": 1}}, "is dict: expected a number, a string, a boolean, or a list"),
        ({"request_id": "x", "label": None}, "is null: expected a number"),
        ({"request_id": "x", "label": [[1], [2]]}, r"label\[0\] is list"),
        ({"request_id": "x", "label": []}, "is a list of 0: expected 1 to"),
        ({"request_id": "x", "label": float("nan")}, "expected a finite number"),
        ({"request_id": "x", "label": "y" * 1001}, "has 1001 characters"),
        ({"request_id": "x"}, "expected exactly 'request_id' and 'label'"),
        ({"request_id": "x", "label": 1, "score": 3}, r"unknown: \['score'\]"),
    ],
)
def test_bad_items_are_refused_and_nothing_is_stored(
    platform: Platform, endpoint_id: str, item: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        record(platform, [{"request_id": "r-1", "label": 1}, item])
    assert stored(platform, endpoint_id) == {}


def test_at_most_ten_thousand_items_per_call(platform: Platform, endpoint_id: str) -> None:
    too_many = [{"request_id": f"r-{i}", "label": 1} for i in range(feedback.MAX_ITEMS + 1)]
    with pytest.raises(InvalidInput, match="got 10001 feedback items: expected 1 to 10,000 per call"):
        record(platform, too_many)
    with pytest.raises(InvalidInput, match="got 0 feedback items"):
        record(platform, [])
    assert record(platform, too_many[:-1]) == feedback.MAX_ITEMS


def test_writing_needs_write_rights_and_outsiders_see_nothing(
    platform: Platform, endpoint_id: str, make_caller: MakeCaller
) -> None:
    viewer = make_caller({TEAM: "viewer"})
    outsider = make_caller({OTHER: "admin"})
    with pytest.raises(PermissionDenied, match="may not write"):
        record(platform, [{"request_id": "r-1", "label": 1}], viewer)
    with pytest.raises(NotFound, match="does not exist or you are not a member"):
        record(platform, [{"request_id": "r-1", "label": 1}], outsider)
    with platform.db.session() as session, pytest.raises(NotFound):
        feedback.list_for(session, outsider, TEAM, "churn")
    with pytest.raises(NotFound, match="endpoint 'churn' does not exist in namespace 'team-b'"):
        record(platform, [{"request_id": "r-1", "label": 1}], outsider, namespace=OTHER)
    editor = make_caller({TEAM: "editor"})
    assert record(platform, [{"request_id": "r-1", "label": 1}], editor) == 1


def test_labels_join_a_window_by_request_and_row(platform: Platform, endpoint_id: str) -> None:
    record(platform, [
        {"request_id": "one", "label": "cat"},          # one row: joins
        {"request_id": "pair", "label": [1, 0]},         # two rows, two labels: row by row
        {"request_id": "short", "label": [1]},           # two rows, one label: joins nothing
        {"request_id": "scalar", "label": 1},            # two rows, one scalar: ambiguous, joins nothing
    ])  # fmt: skip
    window = pd.DataFrame(
        {"request_id": ["one", "pair", "pair", "short", "short", "scalar", "scalar", "none"], "row": [0, 0, 1, 0, 1, 0, 1, 0]}
    )
    with platform.db.session() as session:
        found = feedback.labelled(session, TEAM, endpoint_id, window)
    assert found["label"].tolist() == ["cat", 1, 0, None, None, None, None, None]
    with platform.db.session() as session:
        assert feedback.labelled(session, OTHER, endpoint_id, window)["label"].isna().all()  # labels stay in their namespace
        assert feedback.labelled(session, TEAM, endpoint_id, window.iloc[0:0])["label"].tolist() == []
