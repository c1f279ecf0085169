"""Micro-batching: concurrent requests share one model call, and still get their own answers."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from shipyard.serving.gateway.batching import Answer, MicroBatcher


class Recorder:
    """A model that answers each row's first value doubled, and remembers each call's row count."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on

    def __call__(self, rows: np.ndarray[Any, Any], with_proba: bool) -> Answer:
        self.calls.append(len(rows))
        if self.fail_on is not None and self.fail_on in rows[:, 0]:
            raise ValueError("poisoned row")
        predictions = (rows[:, 0] * 2).tolist()
        return predictions, ([[float(v), 1.0 - float(v)] for v in rows[:, 0]] if with_proba else None)


def request(*values: float) -> np.ndarray[Any, Any]:
    return np.array([[v, 0.0] for v in values])


async def together(batcher: MicroBatcher, *requests: tuple[np.ndarray[Any, Any], bool]) -> list[Any]:
    return await asyncio.gather(*(batcher.predict(rows, proba) for rows, proba in requests), return_exceptions=True)


def test_concurrent_requests_share_one_call_and_get_their_own_slices() -> None:
    model = Recorder()
    sizes: list[int] = []
    batcher = MicroBatcher(model, max_size=32, on_batch=sizes.append)
    answers = asyncio.run(together(batcher, (request(1), False), (request(2, 3), True), (request(4), False)))
    assert model.calls == [4]
    assert sizes == [3]
    assert answers[0] == ([2.0], None)
    assert answers[1] == ([4.0, 6.0], [[2.0, -1.0], [3.0, -2.0]])
    assert answers[2] == ([8.0], None)


def test_a_batch_never_exceeds_max_size() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, max_size=4)
    answers = asyncio.run(together(batcher, *[(request(i), False) for i in range(10)]))
    assert [a[0] for a in answers] == [[2.0 * i] for i in range(10)]
    assert max(model.calls) <= 4
    assert sum(model.calls) == 10


def test_a_lone_request_is_answered_without_waiting_for_company() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, max_size=32)
    assert asyncio.run(batcher.predict(request(5), False)) == ([10.0], None)
    assert model.calls == [1]


def test_max_size_one_calls_the_model_directly() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, max_size=1)
    answers = asyncio.run(together(batcher, (request(1), False), (request(2), False)))
    assert model.calls == [1, 1]
    assert [a[0] for a in answers] == [[2.0], [4.0]]


def test_max_wait_gathers_requests_that_arrive_later_and_stops_when_full() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, max_size=3, max_wait=30.0)

    async def staggered() -> list[Any]:
        async def later(value: float, ticks: int) -> Answer:
            for _ in range(ticks):
                await asyncio.sleep(0)
            return await batcher.predict(request(value), False)

        # A full batch answers at once: were the 30 s waited, wait_for would time out.
        return await asyncio.wait_for(asyncio.gather(later(1, 0), later(2, 3), later(3, 6)), timeout=10)

    answers = asyncio.run(staggered())
    assert model.calls == [3]
    assert [a[0] for a in answers] == [[2.0], [4.0], [6.0]]


def test_one_bad_request_fails_alone() -> None:
    model = Recorder(fail_on=7.0)
    batcher = MicroBatcher(model, max_size=32)
    answers = asyncio.run(together(batcher, (request(1), False), (request(7), False), (request(3), False)))
    assert answers[0] == ([2.0], None)
    assert isinstance(answers[1], ValueError)
    assert answers[2] == ([6.0], None)


def test_a_failing_leader_still_lets_followers_through() -> None:
    model = Recorder(fail_on=7.0)
    batcher = MicroBatcher(model, max_size=32)
    answers = asyncio.run(together(batcher, (request(7), False), (request(2), False)))
    assert isinstance(answers[0], ValueError)
    assert answers[1] == ([4.0], None)


def test_followers_are_answered_when_the_leader_is_cancelled() -> None:
    model = Recorder()
    batcher = MicroBatcher(model, max_size=32, max_wait=30.0)

    async def scenario() -> Answer:
        leader = asyncio.create_task(batcher.predict(request(1), False))
        await asyncio.sleep(0)  # the leader is now gathering
        follower = asyncio.create_task(batcher.predict(request(2), False))
        await asyncio.sleep(0)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        return await asyncio.wait_for(follower, timeout=10)

    assert asyncio.run(scenario()) == ([4.0], None)
