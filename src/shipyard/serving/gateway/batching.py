"""Adaptive micro-batching: concurrent small requests to one model share one model call.

The first request to find a model idle becomes the batch's leader. It yields to the
event loop once, so requests already read from other connections join, waits up to
``max_wait`` for more (zero by default: under light load nobody waits, under heavy
load batches grow by themselves), then predicts for all of them in one call and hands
each follower its slice. A batch never holds more than ``max_size`` requests.

If the joint call fails, each request is retried alone, so one bad request cannot fail
the others; the error then belongs to the request that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from shipyard.registry.predictor import Predictor

Answer = tuple[list[Any], list[list[float]] | None]
Call = Callable[[np.ndarray[Any, Any], bool], Answer]


class _Pending:
    __slots__ = ("future", "rows", "with_proba")

    def __init__(self, rows: np.ndarray[Any, Any], with_proba: bool, future: asyncio.Future[Answer] | None) -> None:
        self.rows = rows
        self.with_proba = with_proba
        self.future = future


class _Batch:
    __slots__ = ("full", "members")

    def __init__(self, members: list[_Pending]) -> None:
        self.members = members  # the leader first
        self.full: asyncio.Future[None] | None = None  # set when the batch closes, to end the leader's wait


def call_predictor(predictor: Predictor) -> Call:
    def call(rows: np.ndarray[Any, Any], with_proba: bool) -> Answer:
        if with_proba:
            return predictor.predict_with_proba(rows)
        return predictor.predict(rows), None

    return call


class MicroBatcher:
    """Batches one model's concurrent requests; used from one event loop (one per worker)."""

    def __init__(
        self,
        call: Call,
        *,
        max_size: int,
        max_wait: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._call = call
        self.max_size = max_size
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._open: _Batch | None = None  # the batch a leader is gathering, while it has room

    async def predict(self, rows: np.ndarray[Any, Any], with_proba: bool) -> Answer:
        if self.max_size <= 1:
            return self._call(rows, with_proba)
        batch = self._open
        if batch is not None:  # a leader is gathering: join its batch
            future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            batch.members.append(_Pending(rows, with_proba, future))
            if len(batch.members) >= self.max_size:
                self._close(batch)
            return await future
        batch = self._open = _Batch([_Pending(rows, with_proba, None)])
        try:
            await self._gather(batch)
        except BaseException:  # the leader was cancelled (its client left): its followers still get answers
            self._close(batch)
            for pending in batch.members[1:]:
                _settle_alone(self._call, pending)
            raise
        self._close(batch)
        return self._answer(batch.members)

    async def _gather(self, batch: _Batch) -> None:
        await asyncio.sleep(0)  # let requests already read by this worker join
        if self.max_wait > 0 and self._open is batch:
            batch.full = asyncio.get_running_loop().create_future()
            await asyncio.wait([batch.full], timeout=self.max_wait)

    def _close(self, batch: _Batch) -> None:
        """No one joins ``batch`` any more; the next request starts a new one."""
        if self._open is batch:
            self._open = None
        if batch.full is not None and not batch.full.done():
            batch.full.set_result(None)

    def _answer(self, batch: list[_Pending]) -> Answer:
        """Predict for the whole batch; settle the followers and return the leader's answer."""
        leader, followers = batch[0], batch[1:]
        if self._on_batch is not None:
            self._on_batch(len(batch))
        if not followers:
            return self._call(leader.rows, leader.with_proba)
        with_proba = any(p.with_proba for p in batch)
        try:
            predictions, probabilities = self._call(np.concatenate([p.rows for p in batch]), with_proba)
        except Exception:
            for pending in followers:
                _settle_alone(self._call, pending)
            return self._call(leader.rows, leader.with_proba)
        start = 0
        answers: list[Answer] = []
        for pending in batch:
            end = start + len(pending.rows)
            part = probabilities[start:end] if probabilities is not None and pending.with_proba else None
            answers.append((predictions[start:end], part))
            start = end
        for pending, answer in zip(followers, answers[1:], strict=True):
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(answer)
        return answers[0]


def _settle_alone(call: Call, pending: _Pending) -> None:
    if pending.future is None or pending.future.done():
        return
    try:
        pending.future.set_result(call(pending.rows, pending.with_proba))
    except Exception as exc:
        pending.future.set_exception(exc)
