from __future__ import annotations

import threading

import pytest

from shipyard.access.caller import Caller
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, NotVisible, PermissionDenied, UntrustedModel
from shipyard.registry import models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.tracking import experiments, runs
from shipyard.tracking.runs import Batch, MetricPoint
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()


@pytest.fixture
def digest(platform: Platform, teams: tuple[str, str]) -> str:
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, "churn", description="Churn classifier", tags={"task": "binary"})
    return held_blob(platform, TEAM, b"model bytes")


def _register(platform: Platform, draft: VersionDraft, caller: Caller = SYSTEM, name: str = "churn") -> int:
    with platform.db.session(write=True) as session:
        return models.create_version(session, caller, platform.artifacts, TEAM, name, draft).version


def test_create_get_list_and_update_models(platform: Platform, digest: str) -> None:
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, "aardvark")
        models.create(session, SYSTEM, OTHER, "churn")
        with pytest.raises(AlreadyExists, match="'churn' already exists"):
            models.create(session, SYSTEM, TEAM, "churn")
        with pytest.raises(InvalidInput, match="'@'"):
            models.create(session, SYSTEM, TEAM, "churn@prod")
        with pytest.raises(InvalidInput, match="model name"):
            models.create(session, SYSTEM, TEAM, "a/b")
        updated = models.update(session, SYSTEM, TEAM, "churn", description="new", tags={"owner": "ml"})
        assert (updated.description, updated.tags) == ("new", {"task": "binary", "owner": "ml"})
    with platform.db.session() as session:
        assert [m.name for m in models.list_in(session, SYSTEM, TEAM)] == ["aardvark", "churn"]
        with pytest.raises(NotFound, match="'ghost'"):
            models.get(session, SYSTEM, TEAM, "ghost")


def test_versions_are_numbered_from_one_per_model(platform: Platform, digest: str) -> None:
    with platform.db.session(write=True) as session:
        models.create(session, SYSTEM, TEAM, "other")
    numbers = [_register(platform, VersionDraft(digest, "sklearn")) for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert _register(platform, VersionDraft(digest, "onnx"), name="other") == 1
    with platform.db.session() as session:
        listed = models.list_versions(session, SYSTEM, TEAM, "churn")
        assert [v.version for v in listed] == numbers
        assert {(v.artifact_digest, v.artifact_size) for v in listed} == {(digest, len(b"model bytes"))}
        with pytest.raises(NotFound, match="no version 9"):
            models.get_version(session, SYSTEM, TEAM, "churn", 9)


def test_concurrent_registrations_get_distinct_numbers(platform: Platform, digest: str) -> None:
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def register() -> None:
        try:
            barrier.wait(timeout=30)
            number = _register(platform, VersionDraft(digest, "sklearn"))
            with lock:
                results.append(number)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(results) == list(range(1, workers + 1))


def test_versions_are_immutable_but_for_their_description(platform: Platform, digest: str) -> None:
    draft = VersionDraft(digest, "sklearn", signature={"inputs": {"type": "tensor"}}, metrics={"auc": 0.9}, tags={"a": "b"})
    number = _register(platform, draft)
    with platform.db.session(write=True) as session:
        before = models.get_version(session, SYSTEM, TEAM, "churn", number)
        snapshot = {c.key: getattr(before, c.key) for c in before.__table__.columns if c.key != "description"}
        models.update_version(session, SYSTEM, TEAM, "churn", number, description="promoted after review")
    with platform.db.session() as session:
        after = models.get_version(session, SYSTEM, TEAM, "churn", number)
        assert after.description == "promoted after review"
        assert {c.key: getattr(after, c.key) for c in after.__table__.columns if c.key != "description"} == snapshot
    assert not hasattr(models, "delete_version")


def test_a_run_link_fills_in_metrics_and_code_version(platform: Platform, digest: str) -> None:
    with platform.db.session(write=True) as session:
        experiment = experiments.create(session, SYSTEM, TEAM, "churn")
        run = runs.create(session, SYSTEM, TEAM, experiment.id, code_version="deadbeef")
        points = [MetricPoint("auc", 0.8, step=0), MetricPoint("auc", 0.9, step=1), MetricPoint("f1", 0.7)]
        runs.log_batch(session, SYSTEM, TEAM, run.id, Batch(metrics=points))
    linked = _register(platform, VersionDraft(digest, "sklearn", run_id=run.id))
    explicit = _register(platform, VersionDraft(digest, "sklearn", run_id=run.id, metrics={"auc": 0.5}, code_version="cafe"))
    with platform.db.session() as session:
        first = models.get_version(session, SYSTEM, TEAM, "churn", linked)
        second = models.get_version(session, SYSTEM, TEAM, "churn", explicit)
    assert (first.metrics, first.code_version, first.run_id) == ({"auc": 0.9, "f1": 0.7}, "deadbeef", run.id)
    assert (second.metrics, second.code_version) == ({"auc": 0.5}, "cafe")
    with platform.db.session(write=True) as session:
        theirs = runs.create(session, SYSTEM, OTHER, experiments.create(session, SYSTEM, OTHER, "x").id)
    with pytest.raises(NotFound):
        _register(platform, VersionDraft(digest, "sklearn", run_id=theirs.id))


def test_datasets_are_validated_and_kept(platform: Platform, digest: str) -> None:
    entry = {"name": "train", "digest": "a" * 64, "rows": 10}
    number = _register(platform, VersionDraft(digest, "sklearn", datasets=[entry, {"digest": "b" * 64}]))
    with platform.db.session() as session:
        assert models.get_version(session, SYSTEM, TEAM, "churn", number).datasets == [entry, {"name": "", "digest": "b" * 64}]
    for bad in ({"name": "train"}, {"digest": ""}, "train"):
        with pytest.raises(InvalidInput, match="dataset entry"):
            _register(platform, VersionDraft(digest, "sklearn", datasets=[bad]))  # type: ignore[list-item]


def test_artifacts_must_exist_and_formats_be_known(platform: Platform, digest: str) -> None:
    with pytest.raises(InvalidInput, match="has not been uploaded to namespace"):
        _register(platform, VersionDraft("0" * 64, "sklearn"))
    with pytest.raises(InvalidInput, match="not valid"):
        _register(platform, VersionDraft("xyz", "sklearn"))
    with pytest.raises(InvalidInput, match="format 'joblib' is unknown"):
        _register(platform, VersionDraft(digest, "joblib"))
    with pytest.raises(UntrustedModel, match="trust_pickle"):
        _register(platform, VersionDraft(digest, "pickle"))
    assert _register(platform, VersionDraft(digest, "pickle", trust_pickle=True)) == 1
    with pytest.raises(NotFound):
        _register(platform, VersionDraft(digest, "sklearn"), name="ghost")


def test_roles_for_the_registry(platform: Platform, digest: str, make_caller: MakeCaller) -> None:
    viewer = make_caller({TEAM: "viewer"})
    editor = make_caller({TEAM: "editor"})
    outsider = make_caller({OTHER: "admin"})
    assert _register(platform, VersionDraft(digest, "sklearn"), caller=editor) == 1
    with pytest.raises(PermissionDenied):
        _register(platform, VersionDraft(digest, "sklearn"), caller=viewer)
    with pytest.raises(NotVisible):
        _register(platform, VersionDraft(digest, "sklearn"), caller=outsider)
    with platform.db.session(write=True) as session:
        assert models.get_version(session, viewer, TEAM, "churn", 1).created_by == editor.name
        with pytest.raises(PermissionDenied):
            models.create(session, viewer, TEAM, "mine")
        with pytest.raises(PermissionDenied):
            models.update_version(session, viewer, TEAM, "churn", 1, description="x")
        with pytest.raises(NotVisible):
            models.list_in(session, outsider, TEAM)


def test_a_digest_uploaded_in_another_namespace_cannot_be_registered(platform: Platform, digest: str) -> None:
    theirs = held_blob(platform, OTHER, b"another team's model")
    assert platform.artifacts.exists(theirs)
    with pytest.raises(InvalidInput, match="has not been uploaded to namespace 'team-a'"):
        _register(platform, VersionDraft(theirs, "sklearn"))
    # Once the same bytes are uploaded into this namespace, they are this namespace's to use.
    assert held_blob(platform, TEAM, b"another team's model") == theirs
    assert _register(platform, VersionDraft(theirs, "sklearn")) == 1


def test_an_onnx_export_must_be_held_by_the_namespace_like_the_main_file(platform: Platform, digest: str) -> None:
    theirs = held_blob(platform, OTHER, b"another team's onnx")
    with pytest.raises(InvalidInput, match="has not been uploaded to namespace 'team-a'"):
        _register(platform, VersionDraft(digest, "sklearn", onnx_digest=theirs))
    with pytest.raises(InvalidInput, match="already ONNX"):
        _register(platform, VersionDraft(digest, "onnx", onnx_digest=digest))
    ours = held_blob(platform, TEAM, b"onnx bytes")
    version = _register(platform, VersionDraft(digest, "sklearn", onnx_digest=ours))
    with platform.db.session() as session:
        row = models.get_version(session, SYSTEM, TEAM, "churn", version)
        assert (row.onnx_digest, row.onnx_size) == (ours, len(b"onnx bytes"))
        assert (row.artifact_digest, row.artifact_size) == (digest, len(b"model bytes"))
