"""The closed-loop controller on an injected clock: gate, canary, promotion, automatic rollback.

The models are real (scikit-learn on the bundled breast-cancer data, registered through the
API), the prediction log is real Parquet written by the gateway's writer, and feedback goes
through the feedback service; only time is simulated.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sqlalchemy import select

from shipyard.access.caller import Caller
from shipyard.client import Client
from shipyard.errors import InvalidInput
from shipyard.monitoring import feedback, retraining
from shipyard.monitoring.controller import LoopController
from shipyard.registry import aliases
from shipyard.runtime import Platform
from shipyard.serving import endpoints, revisions
from shipyard.serving.gateway.prediction_log import PredictionLog, PredictionRecord
from shipyard.store.models import AuditEvent
from tests.conftest import TEAM, MakeCaller

DATA = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "data" / "breast_cancer.csv"
SHIFTED = "worst_texture"
START = 1_800_000_000_000
SECOND = 1000


def fit(frame: pd.DataFrame, *, flip: bool = False) -> Pipeline:
    labels = 1 - frame["target"] if flip else frame["target"]
    model = Pipeline([("scale", StandardScaler()), ("classifier", LogisticRegression(max_iter=5000))])
    model.fit(frame.drop(columns="target"), labels)
    return model


def shift(frame: pd.DataFrame, by_sd: float = 3.0) -> pd.DataFrame:
    moved = frame.copy()
    moved[SHIFTED] = moved[SHIFTED] + by_sd * frame[SHIFTED].std()
    return moved


@dataclass
class World:
    """One namespace with the endpoint ``cancer`` serving v1, a loop on it, and a way to fake traffic."""

    platform: Platform
    client: Client
    operator: Caller
    log: PredictionLog
    controller: LoopController
    train: pd.DataFrame
    test: pd.DataFrame
    models: dict[int, Pipeline] = field(default_factory=dict)
    now: int = START
    ids: Iterator[int] = field(default_factory=itertools.count)

    def register(self, model: Pipeline, frame: pd.DataFrame, metrics: dict[str, float] | None = None) -> int:
        version = int(
            self.client.register_model(
                "cancer", model, training_data=frame.drop(columns="target"), metrics=metrics, namespace=TEAM
            )["version"]
        )
        self.models[version] = model
        return version

    def serve(self, rows: pd.DataFrame, *, revision: int, version_of: Any, status: int = 200) -> None:
        """Log one request per row answered by ``version_of(i)`` at ``revision``, and send its true label."""
        items = []
        for i, (_, row) in enumerate(rows.iterrows()):
            version = version_of(i)
            features = row.drop("target").to_numpy(dtype=float)[None, :]
            request_id = f"req-{next(self.ids)}"
            self.now += 10
            answer = self.models[version].predict(pd.DataFrame(features, columns=rows.columns.drop("target")))
            self.log.add(
                PredictionRecord(
                    request_id, self.now, TEAM, "cancer", revision, "cancer", version, "v1", status, 2.0,
                    features if status < 400 else None, [int(answer[0])] if status < 400 else None,
                    None if status < 400 else "model failed",
                )
            )  # fmt: skip
            items.append({"request_id": request_id, "label": int(row["target"])})
        self.log.flush()
        with self.platform.db.session(write=True) as session:
            feedback.record(session, self.operator, TEAM, "cancer", items)

    def tick(self, *, after_s: float = 1.0) -> list[str]:
        self.now += int(after_s * SECOND)
        return self.controller.tick()

    def cycle(self) -> dict[str, Any]:
        return self.client.loop_cycles("cancer", namespace=TEAM)[0]

    def routes(self) -> list[tuple[int, int]]:
        with self.platform.db.session() as session:
            endpoint = endpoints.get(session, Caller.system(), TEAM, "cancer")
            current = revisions.current(session, endpoint)
            assert current is not None
            return [(r["version"], r["weight"]) for r in current.routes]

    def revision(self) -> int:
        return int(self.client.get_endpoint("cancer", namespace=TEAM)["current"]["revision"])

    def set_loop(self, **spec: Any) -> None:
        with self.platform.db.session(write=True) as session:
            retraining.put(session, self.operator, TEAM, "cancer", {"model": "cancer", **spec})


@pytest.fixture
def world(platform: Platform, client: Client, make_caller: MakeCaller, tmp_path: Path) -> World:
    frame = pd.read_csv(DATA)
    train, test = train_test_split(frame, test_size=0.4, random_state=42, stratify=frame["target"])
    log_url = str(tmp_path / "predictions")
    found = World(
        platform=platform,
        client=client,
        operator=make_caller({TEAM: "operator"}),
        log=PredictionLog(log_url),
        controller=LoopController(platform.db, platform.artifacts, log_url),
        train=train,
        test=test,
    )
    found.controller.clock = lambda: found.now
    version = found.register(fit(train), train, metrics={"accuracy": 0.97})
    client.deploy("cancer", "cancer", version=version, namespace=TEAM)
    client.set_alias("cancer", "production", version, namespace=TEAM)
    return found


CANARY = {"weight": 10, "soak_seconds": 60, "min_requests": 20, "min_labels": 20, "max_wait_seconds": 600}


def test_a_better_candidate_passes_the_gate_soaks_as_a_canary_and_is_promoted(world: World) -> None:
    world.set_loop(gate={"min_samples": 100}, canary=CANARY)
    shifted_test = shift(world.test)
    world.serve(shifted_test, revision=1, version_of=lambda i: 1)  # production meets shifted data
    candidate = world.register(fit(shift(world.train)), shift(world.train))

    world.tick()
    cycle = world.cycle()
    assert (cycle["state"], cycle["candidate_version"], cycle["baseline_version"]) == ("canary", candidate, 1)
    gate = cycle["detail"]["gate"]
    assert gate["passed"]
    assert gate["candidate"] > gate["baseline"]
    assert gate["samples"] == len(shifted_test)
    assert world.routes() == [(1, 90), (candidate, 10)]
    assert cycle["canary_revision"] == world.revision() == 2

    world.serve(shifted_test, revision=2, version_of=lambda i: candidate if i % 4 == 0 else 1)
    world.tick(after_s=30)  # soak not over yet
    assert world.cycle()["state"] == "canary"
    world.tick(after_s=31)
    cycle = world.cycle()
    assert cycle["state"] == "promoted", cycle["reason"]
    assert world.routes() == [(candidate, 100)]
    with world.platform.db.session() as session:
        assert aliases.resolve(session, Caller.system(), TEAM, "cancer", "production").version == candidate
    assert [t["to"] for t in cycle["detail"]["transitions"]] == ["gating", "canary", "promoted"]
    assert cycle["detail"]["lineage"]["model_version_id"]
    assert _audited(world) == ["loop gating", "loop canary", "loop promoted"]


def test_a_worse_candidate_that_looks_fine_offline_is_rolled_back_automatically(world: World) -> None:
    # The gate trusts the metrics recorded at training (which mislabelled data made look good);
    # the canary's live quality on labelled traffic shows the truth.
    world.set_loop(gate={"data": "registry", "min_improvement": -0.05}, canary=CANARY)
    candidate = world.register(fit(world.train, flip=True), world.train, metrics={"accuracy": 0.96})

    world.tick()
    assert world.cycle()["state"] == "canary"
    world.serve(world.test, revision=2, version_of=lambda i: candidate if i % 4 == 0 else 1)
    world.tick(after_s=5)  # a breach does not wait for the soak window
    cycle = world.cycle()
    assert cycle["state"] == "rolled_back"
    assert "accuracy" in cycle["reason"]
    assert "worse" in cycle["reason"]
    assert world.routes() == [(1, 100)]
    assert world.revision() == 3
    with world.platform.db.session() as session:
        assert aliases.resolve(session, Caller.system(), TEAM, "cancer", "production").version == 1
    assert _audited(world) == ["loop gating", "loop canary", "loop rolled_back"]


def test_a_canary_that_fails_requests_is_rolled_back(world: World) -> None:
    world.set_loop(gate={"data": "registry", "min_improvement": -1}, canary=CANARY)
    candidate = world.register(fit(world.train), world.train, metrics={"accuracy": 0.9})
    world.tick()
    world.serve(world.test.iloc[:100], revision=2, version_of=lambda i: 1)
    world.serve(world.test.iloc[:25], revision=2, version_of=lambda i: candidate, status=500)
    world.tick()
    cycle = world.cycle()
    assert cycle["state"] == "rolled_back"
    assert "error rate 100.00%" in cycle["reason"]
    assert world.routes() == [(1, 100)]


def test_the_gate_rejects_a_candidate_that_is_not_better(world: World) -> None:
    world.set_loop(gate={"min_samples": 50, "min_improvement": 0.01}, canary=CANARY)
    world.serve(world.test, revision=1, version_of=lambda i: 1)
    world.register(fit(world.train, flip=True), world.train)
    world.tick()
    cycle = world.cycle()
    assert cycle["state"] == "rejected"
    assert "gate failed" in cycle["reason"]
    assert world.routes() == [(1, 100)]
    assert world.revision() == 1


def test_the_gate_waits_for_labelled_requests_then_gives_up(world: World) -> None:
    world.set_loop(gate={"min_samples": 50, "wait_seconds": 120}, canary=CANARY)
    world.register(fit(world.train), world.train)
    world.tick()
    cycle = world.cycle()
    assert cycle["state"] == "gating"
    assert "0 of 50" in cycle["detail"]["waiting"]
    world.tick(after_s=121)
    assert world.cycle()["state"] == "rejected"
    assert world.revision() == 1


def test_a_change_by_hand_during_the_canary_is_left_alone(world: World) -> None:
    world.set_loop(gate={"data": "registry", "min_improvement": -1}, canary=CANARY)
    world.register(fit(world.train), world.train, metrics={"accuracy": 0.9})
    world.tick()
    world.client.deploy("cancer", "cancer", version=1, namespace=TEAM)  # revision 3, by a person
    world.tick()
    cycle = world.cycle()
    assert cycle["state"] == "failed"
    assert "revision 3" in cycle["reason"]
    assert world.revision() == 3


def test_versions_registered_before_the_loop_are_not_candidates(world: World) -> None:
    world.register(fit(world.train), world.train)
    world.set_loop(canary=CANARY)
    assert world.tick() == []
    assert world.client.loop_cycles("cancer", namespace=TEAM) == []


def test_a_second_controller_finds_nothing_left_to_do(world: World) -> None:
    world.set_loop(gate={"data": "registry", "min_improvement": -1}, canary=CANARY)
    world.register(fit(world.train), world.train, metrics={"accuracy": 0.9})
    other = LoopController(world.platform.db, world.platform.artifacts, world.controller.log_url, clock=lambda: world.now)
    assert len(world.tick()) == 1
    assert other.tick() == []  # the candidate is already in its canary: nothing new to start
    assert len(world.client.loop_cycles("cancer", namespace=TEAM)) == 1


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({}, "needs 'model'"),
        ({"model": "cancer", "colour": 1}, "unknown loop spec field"),
        ({"model": "cancer", "gate": {"metric": "vibes"}}, "gate metric 'vibes' is unknown"),
        ({"model": "cancer", "gate": {"data": "rumour"}}, "gate data 'rumour' is unknown"),
        ({"model": "cancer", "canary": {"weight": 100}}, "canary weight must be 1-99"),
        ({"model": "cancer", "canary": {"soak_seconds": 600, "max_wait_seconds": 60}}, "shorter than soak_seconds"),
        ({"model": "cancer", "canary": {"max_error_rate": 2}}, "between 0 and 1"),
        ({"model": "cancer", "canary": "fast"}, "expected a JSON object"),
    ],
)
def test_bad_loop_specs_are_refused_with_what_was_expected(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        retraining.LoopSpec.from_dict(spec)


def test_improvement_follows_the_metric_direction() -> None:
    assert retraining.Gate(metric="accuracy").improvement(0.9, 0.8) == pytest.approx(0.1)
    assert retraining.Gate(metric="rmse").improvement(0.8, 0.9) == pytest.approx(0.1)


def _audited(world: World) -> list[str]:
    with world.platform.db.session() as session:
        rows = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("loop %")).order_by(AuditEvent.id)).all()
    return list(rows)


def test_scores_match_scikit_learn() -> None:
    from sklearn import metrics

    from shipyard.monitoring.controller import score

    labels = np.array([0, 1, 1, 0, 1, 1])
    predicted = [0, 1, 0, 0, 1, 0]
    proba = [[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8], [0.55, 0.45]]
    assert score("accuracy", labels, predicted, None, None) == metrics.accuracy_score(labels, predicted)
    assert score("recall", labels, predicted, None, None) == metrics.recall_score(labels, predicted)
    assert score("roc_auc", labels, predicted, proba, [0, 1]) == metrics.roc_auc_score(labels, np.array(proba)[:, 1])
    assert score("log_loss", labels, predicted, proba, [0, 1]) == pytest.approx(metrics.log_loss(labels, proba))
    with pytest.raises(InvalidInput, match="probabilities"):
        score("roc_auc", labels, predicted, None, None)
