from __future__ import annotations

from typing import Any

import pytest

from shipyard.serving.gateway import models
from shipyard.serving.gateway.state import StatePoller
from tests.serving.gateway.fakes import FakeControlPlane

NS = "team-a"


def test_first_poll_loads_and_swaps_in_a_table(control: FakeControlPlane) -> None:
    poller = StatePoller(control, 1.0)
    assert not poller.ready.is_set()
    assert poller.poll_once()
    endpoint = poller.table.endpoints[(NS, "ep")]
    assert [r.served.label for r in endpoint.routes] == ["clf:1"]
    assert endpoint.routes[0].served.schema.width == 30
    assert poller.ready.is_set()


def test_an_unchanged_state_costs_no_swap(control: FakeControlPlane) -> None:
    poller = StatePoller(control, 1.0)
    poller.poll_once()
    table = poller.table
    assert not poller.poll_once()
    assert poller.table is table


def test_models_are_warmed_before_the_swap(control: FakeControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    poller = StatePoller(control, 1.0)
    poller.poll_once()
    warmed: list[int] = []
    real_warm = models.warm

    def spy(predictor: Any, schema: Any) -> None:
        warmed.append(len(poller.table.endpoints[(NS, "ep")].routes))  # still the old table
        real_warm(predictor, schema)

    monkeypatch.setattr(models, "warm", spy)
    control.deploy(NS, "ep", [("clf", 1, 50), ("clf", 2, 50)])
    poller.poll_once()
    assert warmed == [1]
    assert len(poller.table.endpoints[(NS, "ep")].routes) == 2


def test_loaded_models_are_reused_by_digest(control: FakeControlPlane) -> None:
    poller = StatePoller(control, 1.0)
    poller.poll_once()
    control.deploy(NS, "ep", [("clf", 1, 90), ("clf", 2, 10)])
    poller.poll_once()
    control.deploy(NS, "ep", [("clf", 2, 100)])
    poller.poll_once()
    assert control.downloads == 2


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(control: FakeControlPlane) -> None:
    poller = StatePoller(control, 1.0)
    poller.poll_once()
    control.files[(NS, "clf", 2, False)] = b"corrupted"
    control.deploy(NS, "ep", [("clf", 2, 100)])
    poller.poll_once()
    assert [r.served.label for r in poller.table.endpoints[(NS, "ep")].routes] == ["clf:1"]
    assert poller.table.etag is None  # so the next poll tries again
