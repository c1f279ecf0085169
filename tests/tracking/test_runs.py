from __future__ import annotations

import re
import sys

import pytest
from sqlalchemy import func, select

from shipyard.access.caller import Caller
from shipyard.errors import ImmutableValue, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.runtime import Platform
from shipyard.store.models import Metric, Run, now_ms
from shipyard.tracking import experiments, runs
from shipyard.tracking.runs import Batch, MetricPoint
from tests.conftest import OTHER, TEAM, MakeCaller

SYSTEM = Caller.system()


@pytest.fixture
def run_id(platform: Platform, teams: tuple[str, str]) -> str:
    with platform.db.session(write=True) as session:
        experiment = experiments.create(session, SYSTEM, TEAM, "churn")
        return runs.create(session, SYSTEM, TEAM, experiment.id, name="baseline", code_version="abc123").id


def _log(platform: Platform, run_id: str, batch: Batch) -> None:
    with platform.db.session(write=True) as session:
        runs.log_batch(session, SYSTEM, TEAM, run_id, batch)


def _state(platform: Platform, run_id: str) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[float | None, int]], int]:
    with platform.db.session() as session:
        latest = {m.key: (m.value, m.step) for m in runs.latest_metrics_of(session, run_id)}
        count = session.scalar(select(func.count()).select_from(Metric).where(Metric.run_id == run_id)) or 0
        return runs.params_of(session, run_id), runs.tags_of(session, run_id), latest, count


def test_create_sets_defaults_and_tags(platform: Platform, run_id: str) -> None:
    with platform.db.session() as session:
        run = runs.get(session, SYSTEM, TEAM, run_id)
        assert (run.status, run.end_time, run.lifecycle_stage, run.name) == ("running", None, "active", "baseline")
        assert run.code_version == "abc123"
        assert run.start_time <= now_ms()
        with pytest.raises(NotFound):
            runs.get(session, SYSTEM, OTHER, run_id)
        with pytest.raises(NotFound):
            runs.get(session, SYSTEM, TEAM, "0" * 32)


def test_nested_runs_need_a_parent_in_the_same_namespace(platform: Platform, run_id: str) -> None:
    with platform.db.session(write=True) as session:
        run = runs.get(session, SYSTEM, TEAM, run_id)
        child = runs.create(session, SYSTEM, TEAM, run.experiment_id, parent_run_id=run_id, tags={"fold": "1"})
        assert child.parent_run_id == run_id
        assert runs.tags_of(session, child.id) == {"fold": "1"}
        elsewhere = experiments.create(session, SYSTEM, OTHER, "other")
        with pytest.raises(NotFound):
            runs.create(session, SYSTEM, OTHER, elsewhere.id, parent_run_id=run_id)
        with pytest.raises(NotFound):
            runs.create(session, SYSTEM, OTHER, run.experiment_id)


def test_lifecycle_transitions_set_and_clear_end_time(platform: Platform, run_id: str) -> None:
    with platform.db.session(write=True) as session:
        before = now_ms()
        finished = runs.update(session, SYSTEM, TEAM, run_id, status="finished")
        assert finished.end_time is not None
        assert finished.end_time >= before
        assert runs.update(session, SYSTEM, TEAM, run_id, status="failed", end_time=1234).end_time == 1234
        assert runs.update(session, SYSTEM, TEAM, run_id, status="killed").status == "killed"
        resumed = runs.update(session, SYSTEM, TEAM, run_id, status="running")
        assert (resumed.status, resumed.end_time) == ("running", None)
        assert runs.update(session, SYSTEM, TEAM, run_id, end_time=99).end_time == 99
        assert runs.update(session, SYSTEM, TEAM, run_id, name="renamed").name == "renamed"
        with pytest.raises(InvalidInput, match="run status 'done' is unknown"):
            runs.update(session, SYSTEM, TEAM, run_id, status="done")
        with pytest.raises(InvalidInput, match="lifecycle stage"):
            runs.update(session, SYSTEM, TEAM, run_id, lifecycle_stage="gone")


def test_deleted_runs_refuse_logging_until_restored(platform: Platform, run_id: str) -> None:
    with platform.db.session(write=True) as session:
        runs.update(session, SYSTEM, TEAM, run_id, lifecycle_stage="deleted")
    with pytest.raises(InvalidInput, match="is deleted"):
        _log(platform, run_id, Batch(params={"a": "1"}))
    with platform.db.session(write=True) as session:
        runs.update(session, SYSTEM, TEAM, run_id, lifecycle_stage="active")
    _log(platform, run_id, Batch(params={"a": "1"}))
    assert _state(platform, run_id)[0] == {"a": "1"}


def test_params_are_immutable(platform: Platform, run_id: str) -> None:
    _log(platform, run_id, Batch(params={"lr": "0.1", "depth": "3"}))
    _log(platform, run_id, Batch(params={"lr": "0.1", "seed": "7"}))
    with pytest.raises(ImmutableValue, match=re.escape("'0.1' and cannot change to '0.2'")):
        _log(platform, run_id, Batch(params={"lr": "0.2"}))
    assert _state(platform, run_id)[0] == {"lr": "0.1", "depth": "3", "seed": "7"}


def test_params_and_tags_must_be_valid(platform: Platform, run_id: str) -> None:
    bad_batches = [
        (Batch(params={"lr": 0.1}), "expected a string"),  # type: ignore[dict-item]
        (Batch(params={"x": "v" * (runs.MAX_PARAM_VALUE_LENGTH + 1)}), "characters long"),
        (Batch(tags={"t": 1}), "expected a string"),  # type: ignore[dict-item]
        (Batch(tags={"t": "v" * (runs.MAX_TAG_VALUE_LENGTH + 1)}), "characters long"),
        (Batch(params={"bad key!": "1"}), "param key"),
        (Batch(tags={"": "1"}), "tag key"),
        (Batch(metrics=[MetricPoint("a/../b", 1.0)]), "metric key"),
        (Batch(metrics=[MetricPoint("k" * 251, 1.0)]), "metric key"),
    ]
    for batch, message in bad_batches:
        with pytest.raises(InvalidInput, match=message):
            _log(platform, run_id, batch)
    assert _state(platform, run_id) == ({}, {}, {}, 0)


def test_tags_overwrite_and_delete(platform: Platform, run_id: str) -> None:
    _log(platform, run_id, Batch(tags={"stage": "dev", "owner": "alice"}))
    _log(platform, run_id, Batch(tags={"stage": "prod"}))
    assert _state(platform, run_id)[1] == {"owner": "alice", "stage": "prod"}
    with platform.db.session(write=True) as session:
        runs.delete_tag(session, SYSTEM, TEAM, run_id, "owner")
        with pytest.raises(NotFound, match="no tag 'owner'"):
            runs.delete_tag(session, SYSTEM, TEAM, run_id, "owner")
    assert _state(platform, run_id)[1] == {"stage": "prod"}


def test_metrics_keep_step_and_timestamp(platform: Platform, run_id: str) -> None:
    points = [MetricPoint("loss", 1.0 / (step + 1), step=step, timestamp=1_000 + step) for step in range(5)]
    before = now_ms()
    _log(platform, run_id, Batch(metrics=[*points, MetricPoint("auc", 0.5)]))
    with platform.db.session() as session:
        history = runs.metric_history(session, SYSTEM, TEAM, run_id, "loss")
        assert [(m.value, m.step, m.timestamp) for m in history] == [(p.value, p.step, p.timestamp) for p in points]
        (auc,) = runs.metric_history(session, SYSTEM, TEAM, run_id, "auc")
        assert auc.step == 0
        assert auc.timestamp >= before
        page = runs.metric_history(session, SYSTEM, TEAM, run_id, "loss", limit=2, after_id=history[1].id)
        assert [m.id for m in page] == [m.id for m in history[2:4]]
        with pytest.raises(InvalidInput, match="limit"):
            runs.metric_history(session, SYSTEM, TEAM, run_id, "loss", limit=0)


def test_latest_metrics_track_the_highest_step(platform: Platform, run_id: str) -> None:
    _log(platform, run_id, Batch(metrics=[MetricPoint("acc", 0.7, step=5, timestamp=10), MetricPoint("acc", 0.1, step=1)]))
    assert _state(platform, run_id)[2] == {"acc": (0.7, 5)}
    _log(platform, run_id, Batch(metrics=[MetricPoint("acc", 0.2, step=3, timestamp=now_ms())]))
    assert _state(platform, run_id)[2] == {"acc": (0.7, 5)}
    _log(platform, run_id, Batch(metrics=[MetricPoint("acc", 0.8, step=5, timestamp=11)]))
    assert _state(platform, run_id)[2] == {"acc": (0.8, 5)}
    _log(platform, run_id, Batch(metrics=[MetricPoint("acc", 0.9, step=6, timestamp=1)]))
    assert _state(platform, run_id)[2] == {"acc": (0.9, 6)}
    assert _state(platform, run_id)[3] == 5


def test_infinite_values_are_clamped_and_nan_is_kept_as_null(platform: Platform, run_id: str) -> None:
    _log(platform, run_id, Batch(metrics=[MetricPoint("hi", float("inf")), MetricPoint("lo", float("-inf"))]))
    assert _state(platform, run_id)[2] == {"hi": (sys.float_info.max, 0), "lo": (-sys.float_info.max, 0)}
    _log(platform, run_id, Batch(metrics=[MetricPoint("loss", 0.5, step=2), MetricPoint("loss", float("nan"), step=3)]))
    assert _state(platform, run_id)[2]["loss"] == (None, 3)
    with platform.db.session() as session:
        history = runs.metric_history(session, SYSTEM, TEAM, run_id, "loss")
    assert [(p.step, p.value) for p in history] == [(2, 0.5), (3, None)]


def test_batches_are_all_or_nothing(platform: Platform, run_id: str) -> None:
    _log(platform, run_id, Batch(params={"lr": "0.1"}, tags={"stage": "dev"}, metrics=[MetricPoint("acc", 0.5)]))
    before = _state(platform, run_id)
    failing = [
        Batch(params={"new": "1", "lr": "0.9"}, tags={"stage": "prod"}, metrics=[MetricPoint("acc", 0.9, step=1)]),
        Batch(params={"new": "1"}, tags={"stage": "prod"}, metrics=[MetricPoint("acc", 0.9, step=1), MetricPoint("", 1)]),
        Batch(params={"new": "1"}, tags={"stage": "prod", "bad key?": "x"}),
        Batch(metrics=[MetricPoint("acc", 0.1, step=2)] * (runs.MAX_BATCH_METRICS + 1)),
        Batch(params={f"p{i}": "1" for i in range(runs.MAX_BATCH_PARAMS + 1)}),
    ]
    for batch in failing:
        with pytest.raises((InvalidInput, ImmutableValue)):
            _log(platform, run_id, batch)
        assert _state(platform, run_id) == before


def test_roles_for_runs(platform: Platform, make_caller: MakeCaller, run_id: str) -> None:
    viewer = make_caller({TEAM: "viewer"})
    outsider = make_caller({OTHER: "editor"})
    with platform.db.session(write=True) as session:
        experiment_id = session.get_one(Run, run_id).experiment_id
        assert runs.get(session, viewer, TEAM, run_id).id == run_id
        with pytest.raises(PermissionDenied):
            runs.create(session, viewer, TEAM, experiment_id)
        with pytest.raises(PermissionDenied):
            runs.log_batch(session, viewer, TEAM, run_id, Batch(params={"a": "1"}))
        with pytest.raises(PermissionDenied):
            runs.update(session, viewer, TEAM, run_id, status="finished")
        with pytest.raises(NotVisible):
            runs.get(session, outsider, TEAM, run_id)
        with pytest.raises(NotVisible):
            runs.metric_history(session, outsider, TEAM, run_id, "acc")
