from __future__ import annotations

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import NotFound, NotVisible
from shipyard.registry import aliases, lineage, models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.store.models import Run
from shipyard.tracking import experiments, runs
from shipyard.tracking.runs import Batch, MetricPoint
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()


@pytest.fixture
def digest(platform: Platform, teams: tuple[str, str]) -> str:
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, "churn")
    return held_blob(platform, TEAM, b"weights")


def _register(platform: Platform, draft: VersionDraft) -> int:
    with platform.db.session(write=True) as session:
        return models.create_version(session, SYSTEM, platform.artifacts, TEAM, "churn", draft).version


def test_lineage_traces_a_version_to_its_run_code_params_and_data(platform: Platform, digest: str) -> None:
    with platform.db.session(write=True) as session:
        experiment = experiments.create(session, SYSTEM, TEAM, "churn-exp")
        grandparent = runs.create(session, SYSTEM, TEAM, experiment.id, name="sweep")
        parent = runs.create(session, SYSTEM, TEAM, experiment.id, name="trial", parent_run_id=grandparent.id)
        run = runs.create(session, SYSTEM, TEAM, experiment.id, name="fold", parent_run_id=parent.id, code_version="abc")
        batch = Batch(metrics=[MetricPoint("auc", 0.8), MetricPoint("auc", 0.9, step=1)], params={"C": "1.0"}, tags={"t": "x"})
        runs.log_batch(session, SYSTEM, TEAM, run.id, batch)
        runs.update(session, SYSTEM, TEAM, run.id, status="finished")
    dataset = {"name": "train", "digest": "d" * 64, "rows": 100}
    signature = {"inputs": {"type": "tensor", "dtype": "double", "shape": [-1, 4]}}
    number = _register(platform, VersionDraft(digest, "sklearn", signature=signature, run_id=run.id, datasets=[dataset]))
    with platform.db.session(write=True) as session:
        aliases.set_alias(session, SYSTEM, TEAM, "churn", "production", number)
        found = lineage.of_version(session, SYSTEM, TEAM, "churn", number)
        ran = session.get_one(Run, run.id)
    assert found["model"] == {"namespace": TEAM, "name": "churn", "version": number, "uri": f"models:/{TEAM}/churn/{number}"}
    assert found["artifact"] == {"digest": digest, "size": len(b"weights"), "format": "sklearn"}
    assert found["signature"] == signature
    assert found["datasets"] == [dataset]
    assert found["metrics"] == {"auc": 0.9}
    assert found["code_version"] == "abc"
    assert found["aliases"] == ["production"]
    assert found["created_by"] == SYSTEM.name
    summary = found["run"]
    assert (summary["id"], summary["name"], summary["status"]) == (run.id, "fold", "finished")
    assert summary["experiment"] == {"id": experiment.id, "name": "churn-exp"}
    assert (summary["params"], summary["metrics"], summary["tags"]) == ({"C": "1.0"}, {"auc": 0.9}, {"t": "x"})
    assert (summary["start_time"], summary["end_time"]) == (ran.start_time, ran.end_time)
    assert [p["id"] for p in found["parent_runs"]] == [parent.id, grandparent.id]
    assert [p["name"] for p in found["parent_runs"]] == ["trial", "sweep"]


def test_lineage_without_a_run(platform: Platform, digest: str) -> None:
    number = _register(platform, VersionDraft(digest, "onnx", metrics={"rmse": 1.5}, code_version="feed"))
    with platform.db.session() as session:
        found = lineage.of_version(session, SYSTEM, TEAM, "churn", number)
    assert (found["run"], found["parent_runs"], found["aliases"]) == (None, [], [])
    assert (found["metrics"], found["code_version"], found["artifact"]["format"]) == ({"rmse": 1.5}, "feed", "onnx")


def test_lineage_survives_a_deleted_run(platform: Platform, digest: str) -> None:
    with platform.db.session(write=True) as session:
        run = runs.create(session, SYSTEM, TEAM, experiments.create(session, SYSTEM, TEAM, "e").id)
    number = _register(platform, VersionDraft(digest, "sklearn", run_id=run.id))
    with platform.db.session(write=True) as session:
        session.delete(session.get_one(Run, run.id))
    with platform.db.session() as session:
        found = lineage.of_version(session, SYSTEM, TEAM, "churn", number)
    assert found["run"] is None
    assert found["artifact"]["digest"] == digest


def test_lineage_is_for_members_only(platform: Platform, digest: str, make_caller: MakeCaller) -> None:
    number = _register(platform, VersionDraft(digest, "sklearn"))
    viewer = make_caller({TEAM: "viewer"})
    outsider = make_caller({OTHER: "admin"})
    with platform.db.session() as session:
        assert lineage.of_version(session, viewer, TEAM, "churn", number)["model"]["version"] == number
        with pytest.raises(NotVisible):
            lineage.of_version(session, outsider, TEAM, "churn", number)
        with pytest.raises(NotFound):
            lineage.of_version(session, viewer, TEAM, "churn", number + 1)
