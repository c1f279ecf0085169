from __future__ import annotations

import logging
import math
import random
from typing import Any

import numpy as np
import pytest

from shipyard.registry.predictor import Predictor
from shipyard.serving.gateway import router
from shipyard.serving.gateway.audience import Audience
from shipyard.serving.gateway.models import ServedModel
from shipyard.serving.gateway.state import ServedEndpoint, build_routes
from shipyard.serving.gateway.validation import InputSchema

DRAWS = 2000


class Constant(Predictor):
    def __init__(self, answer: Any, *, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail

    def predict_with_proba(self, rows: Any) -> tuple[list[Any], list[list[float]] | None]:
        if self.fail:
            raise RuntimeError("broken shadow")
        return [self.answer] * len(rows), None


def served(version: int, predictor: Predictor | None = None) -> ServedModel:
    return ServedModel(
        model="clf",
        version=version,
        fmt="sklearn",
        digest=f"d{version}",
        onnx_digest=None,
        predictor=predictor or Constant(version),
        schema=InputSchema(width=2),
    )


def endpoint(weights: list[int], *, shadow: ServedModel | None = None) -> ServedEndpoint:
    routes = build_routes([(served(i + 1), w) for i, w in enumerate(weights)])
    return ServedEndpoint("team", "ep", 1, Audience(), routes, shadow, "x-user")


def test_weighted_choice_stays_within_a_binomial_bound() -> None:
    split = endpoint([90, 10])
    rng = random.Random(7)
    second = sum(router.choose(split, rng=rng).version == 2 for _ in range(DRAWS))
    mean, sd = DRAWS * 0.1, math.sqrt(DRAWS * 0.1 * 0.9)
    assert mean - 5 * sd <= second <= mean + 5 * sd


def test_zero_weight_route_never_answers() -> None:
    split = endpoint([100, 0])
    rng = random.Random(1)
    assert {router.choose(split, rng=rng).version for _ in range(500)} == {1}


def test_weights_are_scaled_when_they_do_not_add_up_to_100() -> None:
    routes = build_routes([(served(1), 1), (served(2), 3)])
    assert [r.upper for r in routes] == [25.0, 100.0]


def test_a_sticky_value_always_gets_the_same_version() -> None:
    split = endpoint([50, 50])
    for user in ("alice", "bob", "carol", "dave"):
        assert len({router.choose(split, user).version for _ in range(50)}) == 1


def test_sticky_values_spread_by_weight() -> None:
    split = endpoint([90, 10])
    second = sum(router.choose(split, f"user-{i}").version == 2 for i in range(DRAWS))
    mean, sd = DRAWS * 0.1, math.sqrt(DRAWS * 0.1 * 0.9)
    assert mean - 5 * sd <= second <= mean + 5 * sd


def test_sticky_points_are_stable_and_in_range() -> None:
    points = [router.sticky_point(f"v{i}") for i in range(1000)]
    assert all(0 <= p < 100 for p in points)
    assert router.sticky_point("same") == router.sticky_point("same")


def test_shadow_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    shadow = served(9, Constant("shadow-says"))
    split = endpoint([100], shadow=shadow)
    with caplog.at_level(logging.INFO, logger="shipyard.serving.shadow"):
        router.run_shadow(split, shadow, np.zeros((2, 2)), "req-1", "clf:1")
    (record,) = caplog.records
    assert record.predictions == ["shadow-says", "shadow-says"]  # type: ignore[attr-defined]
    assert "req-1" in record.getMessage()
    assert "clf:9" in record.getMessage()


def test_a_failing_shadow_is_logged_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    shadow = served(9, Constant(0, fail=True))
    with caplog.at_level(logging.INFO, logger="shipyard.serving.shadow"):
        router.run_shadow(endpoint([100], shadow=shadow), shadow, np.zeros((1, 2)), "req-2", "clf:1")
    assert caplog.records[0].levelno == logging.WARNING
    assert "broken shadow" in caplog.records[0].getMessage()
