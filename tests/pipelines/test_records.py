"""Pipeline run records: runs and their transitions, step attempts, the step cache, logs, tenancy, lineage."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.access import blobs
from shipyard.access.caller import Caller
from shipyard.errors import Conflict, InvalidInput, NotFound, NotVisible, PermissionDenied
from shipyard.pipelines import queue, records
from shipyard.registry import lineage, models
from shipyard.registry.models import VersionDraft
from shipyard.runtime import Platform
from shipyard.store.models import PipelineRun, StepLog, StepRun
from shipyard.tracking import experiments, runs
from tests.conftest import OTHER, TEAM, MakeCaller, held_blob

SYSTEM = Caller.system()
GRAPH = {"nodes": {"load": {"inputs": {}}, "train": {"inputs": {"data": "load"}}}}


def _ref(digest: str, materializer: str = "json") -> dict[str, Any]:
    return {"digest": digest, "materializer": materializer}


def _run(platform: Platform, namespace: str = TEAM, **options: Any) -> PipelineRun:
    options.setdefault("pipeline", "quickstart")
    pipeline = options.pop("pipeline")
    with platform.db.session(write=True) as session:
        return records.create_run(session, SYSTEM, namespace, pipeline, {"rows": 10}, GRAPH, **options)


def _quota(platform: Platform, namespace: str = TEAM, **limits: Any) -> None:
    with platform.db.session(write=True) as session:
        queue.set_quota(session, SYSTEM, namespace, **limits)


def _update(platform: Platform, run_id: str, caller: Caller = SYSTEM, **changes: Any) -> PipelineRun:
    with platform.db.session(write=True) as session:
        return records.update_run(session, caller, TEAM, run_id, **changes)


def _step(platform: Platform, run_id: str, step: str, attempt: int = 1, namespace: str = TEAM, **fields: Any) -> StepRun:
    with platform.db.session(write=True) as session:
        return records.record_step(session, SYSTEM, namespace, run_id, step, attempt, **fields)


def _cached(platform: Platform, key: str, namespace: str = TEAM) -> StepRun | None:
    with platform.db.session() as session:
        return records.cached_step(session, SYSTEM, namespace, key)


def _logs(platform: Platform, run_id: str, **options: Any) -> list[StepLog]:
    with platform.db.session() as session:
        return records.read_logs(session, SYSTEM, TEAM, run_id, **options)


# -- runs -------------------------------------------------------------------------------


def test_runs_are_recorded_listed_newest_first_and_filtered(platform: Platform, teams: tuple[str, str]) -> None:
    first = _run(platform, resources={"cpu": 2})
    _quota(platform, concurrent_runs=1)  # the next runs wait for the first
    second = _run(platform, pipeline="fine-tune", priority=5, executor="ray")
    third = _run(platform, resumed_from=first.id)
    assert _run(platform, OTHER).status == "running", "another namespace's quota is its own"
    assert (first.status, first.executor, first.priority, first.resources) == ("running", "local", 0, {"cpu": 2})
    assert (first.params, first.graph, first.created_by, first.error) == ({"rows": 10}, GRAPH, SYSTEM.name, None)
    assert first.started_at is not None
    assert first.finished_at is None
    assert (second.status, second.started_at, second.priority, second.executor) == ("queued", None, 5, "ray")
    assert third.resumed_from == first.id
    with platform.db.session() as session:
        listed = records.list_runs(session, SYSTEM, TEAM)
        assert [r.id for r in listed] == [third.id, second.id, first.id]
        assert [r.id for r in records.list_runs(session, SYSTEM, TEAM, pipeline="fine-tune")] == [second.id]
        assert [r.id for r in records.list_runs(session, SYSTEM, TEAM, status="queued")] == [third.id, second.id]
        assert [r.id for r in records.list_runs(session, SYSTEM, TEAM, limit=2)] == [third.id, second.id]
        assert records.list_runs(session, SYSTEM, TEAM, pipeline="ghost") == []
        assert records.get_run(session, SYSTEM, TEAM, first.id).id == first.id
        with pytest.raises(NotFound, match="does not exist in namespace 'team-a'"):
            records.get_run(session, SYSTEM, TEAM, "f" * 32)
        for bad in ({"status": "done"}, {"limit": 0}, {"limit": records.MAX_LIST + 1}):
            with pytest.raises(InvalidInput):
                records.list_runs(session, SYSTEM, TEAM, **bad)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"resources": {"tpu": 1}}, r"resources \['tpu'\] are unknown"),
        ({"resources": {"cpu": -1}}, "resources cpu -1 is not valid"),
        ({"trigger": ""}, "trigger '' is not valid"),
        ({"executor": "slurm"}, "executor 'slurm' is unknown"),
        ({"pipeline": "has space"}, "pipeline name 'has space' is not valid"),
        ({"pipeline": ""}, "pipeline name '' is not valid"),
        ({"priority": 2**40}, "priority"),
        ({"priority": True}, "priority"),
    ],
)
def test_bad_runs_are_refused(platform: Platform, teams: tuple[str, str], options: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _run(platform, **options)
    with platform.db.session() as session:
        assert records.list_runs(session, SYSTEM, TEAM) == []


def test_a_run_resumes_only_a_run_of_its_own_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    theirs = _run(platform, OTHER)
    with pytest.raises(NotFound, match=theirs.id):
        _run(platform, resumed_from=theirs.id)
    with pytest.raises(NotFound):
        _run(platform, resumed_from="nope")


def test_run_transitions(platform: Platform, teams: tuple[str, str]) -> None:
    running = _run(platform)
    assert running.started_at is not None
    assert running.finished_at is None
    assert _update(platform, running.id, status="running").started_at == running.started_at  # the same status: no change
    done = _update(platform, running.id, status="succeeded")
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at  # type: ignore[operator]
    with pytest.raises(Conflict, match="is succeeded and cannot become running"):
        _update(platform, running.id, status="running")

    failed = _update(platform, _run(platform).id, status="failed", error="step 'train' failed")
    assert (failed.status, failed.error) == ("failed", "step 'train' failed")
    with pytest.raises(Conflict, match="resume it"):
        _update(platform, failed.id, status="running")
    with pytest.raises(Conflict):
        _update(platform, failed.id, status="succeeded")

    holder = _run(platform)
    _quota(platform, concurrent_runs=1)
    waiting = _run(platform)
    assert (waiting.status, waiting.started_at) == ("queued", None)
    with pytest.raises(Conflict, match="queued and cannot become succeeded"):
        _update(platform, waiting.id, status="succeeded")
    with pytest.raises(Conflict, match="starts when its namespace's quota lets it"):
        _update(platform, waiting.id, status="running")
    cancelled = _update(platform, waiting.id, status="cancelled")
    assert (cancelled.started_at, cancelled.finished_at is not None) == (None, True)
    assert _update(platform, holder.id, status="cancelled").status == "cancelled"
    with pytest.raises(InvalidInput, match="'paused' is unknown"):
        _update(platform, _run(platform).id, status="paused")


def test_long_errors_are_kept_cut_and_nul_is_escaped(platform: Platform, teams: tuple[str, str]) -> None:
    run = _update(platform, _run(platform).id, status="failed", error="x" * (records.MAX_ERROR_CHARS + 10))
    assert run.error is not None
    assert run.error.endswith("(truncated)")
    assert len(run.error) < records.MAX_ERROR_CHARS + 20
    assert _update(platform, run.id, error="bad\x00byte").error == "bad\\x00byte"


# -- steps ------------------------------------------------------------------------------


def test_a_step_attempt_is_upserted_through_its_states(platform: Platform, teams: tuple[str, str]) -> None:
    digest = held_blob(platform, TEAM, b"rows")
    run = _run(platform, executor="ray")
    pending = _step(platform, run.id, "load")
    assert (pending.status, pending.attempt, pending.executor, pending.started_at, pending.finished_at) == (
        "pending",
        1,
        "ray",
        None,
        None,
    )
    running = _step(platform, run.id, "load", status="running", cache_key="k-load", inputs={}, resources={"cpu": 1})
    assert running.id == pending.id
    assert (running.status, running.cache_key, running.resources) == ("running", "k-load", {"cpu": 1})
    assert running.started_at is not None
    outputs = {"output": {**_ref(digest), "size": 4, "description": {"rows": 1}}}
    done = _step(platform, run.id, "load", status="succeeded", outputs=outputs)
    assert (done.id, done.status, done.outputs, done.cache_key) == (pending.id, "succeeded", outputs, "k-load")
    assert done.finished_at is not None
    # The same report again (a retried request) is accepted; a different one is not.
    assert _step(platform, run.id, "load", status="succeeded", outputs=outputs).id == pending.id
    with pytest.raises(Conflict, match="outputs cannot change"):
        _step(platform, run.id, "load", status="succeeded", outputs={})
    with pytest.raises(Conflict, match="is succeeded and cannot become failed"):
        _step(platform, run.id, "load", status="failed", error="late")
    with pytest.raises(Conflict, match="is succeeded and cannot become running"):
        _step(platform, run.id, "load", status="running")

    failed = _step(platform, run.id, "train", status="running", inputs={"data": _ref(digest)})
    assert _step(platform, run.id, "train", status="failed", error="ValueError: no").error == "ValueError: no"
    with pytest.raises(Conflict, match="record a new attempt"):
        _step(platform, run.id, "train", status="running")
    retry = _step(platform, run.id, "train", 2, status="running", inputs={"data": _ref(digest)})
    assert retry.id != failed.id
    with pytest.raises(Conflict, match="is running and cannot become pending"):
        _step(platform, run.id, "train", 2, status="pending")
    with pytest.raises(Conflict, match="is running and cannot become cached"):
        _step(platform, run.id, "train", 2, status="cached")

    cached = _step(platform, run.id, "report", status="cached", cached_from=done.id, outputs=outputs, cache_key="k-load")
    assert (cached.status, cached.cached_from, cached.finished_at is not None) == ("cached", done.id, True)
    skipped = _step(platform, run.id, "publish", status="skipped")
    assert (skipped.status, skipped.started_at, skipped.finished_at is not None) == ("skipped", None, True)
    later = _step(platform, run.id, "later")
    assert _step(platform, run.id, "later", status="skipped").id == later.id

    with platform.db.session() as session:
        listed = records.list_steps(session, SYSTEM, TEAM, run.id)
    # Oldest first; rows made in the same millisecond may come in either order.
    assert [s.created_at for s in listed] == sorted(s.created_at for s in listed)
    assert sorted((s.step, s.attempt) for s in listed) == sorted(
        [("load", 1), ("train", 1), ("train", 2), ("report", 1), ("publish", 1), ("later", 1)]
    )


@pytest.mark.parametrize(
    ("step", "attempt", "fields", "words"),
    [
        ("load", 0, {}, "attempt 0"),
        ("load", records.MAX_ATTEMPT + 1, {}, "attempt"),
        ("a/b", 1, {}, "step name 'a/b'"),
        ("", 1, {}, "step name ''"),
        ("load", 1, {"status": "done"}, "step status 'done'"),
        ("load", 1, {"colour": "red"}, "colour"),
        ("load", 1, {"cache_key": "has/slash"}, "cache key"),
        ("load", 1, {"inputs": {"data": {"digest": "abc", "materializer": "json"}}}, "input 'data'"),
        ("load", 1, {"inputs": {"data": {"digest": "a" * 64}}}, "materializer None"),
        ("load", 1, {"inputs": {"data": {**_ref("a" * 64), "rows": 1}}}, "unknown fields ['rows']"),
        ("load", 1, {"outputs": {"out": {**_ref("a" * 64), "size": -1}}}, "size"),
        ("load", 1, {"outputs": ["a"]}, "expected a JSON object"),
        ("load", 1, {"cached_from": "nope"}, "cached_from 'nope'"),
        ("load", 1, {"executor": "slurm"}, "executor 'slurm'"),
        ("load", 1, {"started_at": -1}, "started_at"),
        ("load", 1, {"usage": {"cpu_seconds": 1.0}}, "usage has fields ['cpu_seconds']"),
        ("load", 1, {"usage": {"cpu_seconds": -1, "max_rss_mb": 10}}, "usage cpu_seconds -1"),
        ("load", 1, {"usage": {"cpu_seconds": 1, "max_rss_mb": "lots"}}, "usage max_rss_mb 'lots'"),
        ("load", 1, {"usage": [1, 2]}, "usage is a list"),
    ],
)
def test_bad_step_records_are_refused(
    platform: Platform, teams: tuple[str, str], step: str, attempt: int, fields: dict[str, Any], words: str
) -> None:
    run = _run(platform)
    with pytest.raises(InvalidInput) as refused:
        _step(platform, run.id, step, attempt, **fields)
    assert words in refused.value.message
    with platform.db.session() as session:
        assert records.list_steps(session, SYSTEM, TEAM, run.id) == []


def test_a_finished_attempt_is_reported_at_once_with_its_bytes_logs_and_usage(platform: Platform, teams: tuple[str, str]) -> None:
    run = _run(platform)
    data = b'{"rows": 3}'
    digest = hashlib.sha256(data).hexdigest()
    lines = [{"message": f"line {n}", "step": "load", "attempt": 1, "run": run.id} for n in range(3)]
    usage = {"cpu_seconds": 0.25, "max_rss_mb": 42.5}
    report = {
        "status": "succeeded",
        "cache_key": "k-load",
        "inputs": {},
        "outputs": {"output": {**_ref(digest), "size": len(data)}},
        "usage": usage,
        "started_at": 1_000,
        "finished_at": 1_250,
    }

    def send() -> StepRun:
        stored = records.store_blobs(SYSTEM, TEAM, platform.artifacts, {digest: data})
        with platform.db.session(write=True) as session:
            return records.record_step(session, SYSTEM, TEAM, run.id, "load", 1, blobs=stored, logs=lines, **report)

    done = send()  # never recorded as running: a short attempt is reported once, finished
    assert (done.status, done.usage, done.started_at, done.finished_at) == ("succeeded", usage, 1_000, 1_250)
    with platform.db.session() as session:
        assert blobs.readable(session, SYSTEM, TEAM, digest).size == len(data)
    assert platform.artifacts.get_bytes(digest) == data
    assert [line.message for line in _logs(platform, run.id)] == ["line 0", "line 1", "line 2"]
    assert _cached(platform, "k-load") is not None
    assert send().id == done.id  # the same report again (a retried request) adds no lines
    assert len(_logs(platform, run.id)) == 3
    with pytest.raises(Conflict, match="usage cannot change"):
        _step(platform, run.id, "load", status="succeeded", usage={"cpu_seconds": 1, "max_rss_mb": 1})

    # A report that is refused leaves nothing behind: neither its lines nor its blobs.
    other = b"other bytes"
    other_digest = hashlib.sha256(other).hexdigest()
    stored = records.store_blobs(SYSTEM, TEAM, platform.artifacts, {other_digest: other})
    with pytest.raises(Conflict), platform.db.session(write=True) as session:
        records.record_step(session, SYSTEM, TEAM, run.id, "load", 1, blobs=stored, logs=[{"message": "late"}], status="failed")
    assert len(_logs(platform, run.id)) == 3
    with platform.db.session() as session, pytest.raises(NotFound):
        blobs.readable(session, SYSTEM, TEAM, other_digest)


def test_reported_bytes_must_match_their_digest_and_need_write_access(platform: Platform, make_caller: MakeCaller) -> None:
    digest = hashlib.sha256(b"right").hexdigest()
    with pytest.raises(InvalidInput, match="sha256"):
        records.store_blobs(SYSTEM, TEAM, platform.artifacts, {digest: b"wrong"})
    with pytest.raises(InvalidInput, match="blob key 'nope'"):
        records.store_blobs(SYSTEM, TEAM, platform.artifacts, {"nope": b"right"})
    with pytest.raises(PermissionDenied):
        records.store_blobs(make_caller({TEAM: "viewer"}), TEAM, platform.artifacts, {digest: b"right"})
    assert not platform.artifacts.exists(digest)
    assert records.store_blobs(SYSTEM, TEAM, platform.artifacts, {}) == []


def test_a_cache_hit_is_looked_up_and_recorded_in_one_go(platform: Platform, teams: tuple[str, str]) -> None:
    digest = held_blob(platform, TEAM, b"output")
    first = _run(platform)
    source = _step(platform, first.id, "load", status="succeeded", cache_key="k", outputs={"output": _ref(digest)})
    second = _run(platform)
    with platform.db.session(write=True) as session:
        assert records.record_cached(session, SYSTEM, TEAM, second.id, "load", 1, cache_key="missing") is None
        hit = records.record_cached(
            session, SYSTEM, TEAM, second.id, "train", 1, cache_key="k", inputs={"data": _ref(digest)}, executor="ray"
        )
    assert hit is not None
    assert (hit.status, hit.cached_from, hit.outputs, hit.inputs, hit.executor) == (
        "cached",
        source.id,
        {"output": _ref(digest)},
        {"data": _ref(digest)},
        "ray",
    )
    with platform.db.session() as session:
        assert [s.step for s in records.list_steps(session, SYSTEM, TEAM, second.id)] == ["train"], "a miss records nothing"


def test_a_finished_run_takes_no_more_step_records(platform: Platform, teams: tuple[str, str]) -> None:
    run = _run(platform)
    _step(platform, run.id, "load", status="running")
    _update(platform, run.id, status="cancelled")
    with pytest.raises(Conflict, match="has cancelled"):
        _step(platform, run.id, "load", status="succeeded")
    with pytest.raises(Conflict, match="has cancelled"):
        _step(platform, run.id, "train")


def test_cached_from_names_a_succeeded_step_of_the_namespace(platform: Platform, teams: tuple[str, str]) -> None:
    theirs = _run(platform, OTHER)
    their_step = _step(platform, theirs.id, "load", namespace=OTHER, status="succeeded", cache_key="k")
    run = _run(platform)
    failed = _step(platform, run.id, "load", status="failed")
    for source in (their_step.id, failed.id):
        with pytest.raises(InvalidInput, match="not a succeeded step run"):
            _step(platform, run.id, "load", 2, status="cached", cached_from=source)


# -- the step cache ----------------------------------------------------------------------


def test_the_cache_answers_the_newest_succeeded_attempt_with_its_outputs_held(platform: Platform, teams: tuple[str, str]) -> None:
    old_digest = held_blob(platform, TEAM, b"old")
    new_digest = held_blob(platform, TEAM, b"new")
    assert _cached(platform, "key-1") is None

    first = _run(platform)
    older = _step(platform, first.id, "load", status="succeeded", cache_key="key-1", outputs={"output": _ref(old_digest)})
    time.sleep(0.005)  # distinct created_at
    second = _run(platform)
    newer = _step(platform, second.id, "load", status="succeeded", cache_key="key-1", outputs={"output": _ref(new_digest)})
    time.sleep(0.005)
    third = _run(platform)
    _step(platform, third.id, "load", status="failed", cache_key="key-1", error="boom")
    _step(platform, third.id, "load", 2, status="running", cache_key="key-1")
    _step(
        platform,
        third.id,
        "other",
        status="cached",
        cache_key="key-1",
        cached_from=newer.id,
        outputs={"output": _ref(new_digest)},
    )
    hit = _cached(platform, "key-1")
    assert hit is not None
    assert (hit.id, hit.outputs) == (newer.id, {"output": _ref(new_digest)})

    # The newest one's output was never uploaded to the namespace: the one before answers.
    missing = hashlib.sha256(b"never uploaded").hexdigest()
    fourth = _run(platform)
    _step(platform, fourth.id, "load", status="succeeded", cache_key="key-1", outputs={"output": _ref(missing)})
    hit = _cached(platform, "key-1")
    assert hit is not None
    assert hit.id == newer.id
    assert older.id != newer.id

    # Another namespace's identical key is never an answer, in either direction.
    assert _cached(platform, "key-1", OTHER) is None
    theirs = _run(platform, OTHER)
    _step(platform, theirs.id, "load", namespace=OTHER, status="succeeded", cache_key="key-2", outputs={})
    assert _cached(platform, "key-2") is None
    their_hit = _cached(platform, "key-2", OTHER)
    assert their_hit is not None
    assert their_hit.namespace == OTHER
    with pytest.raises(InvalidInput, match="cache key"):
        _cached(platform, "bad key")


# -- logs -------------------------------------------------------------------------------


def test_logs_are_appended_and_read_back_in_pages(platform: Platform, teams: tuple[str, str]) -> None:
    run = _run(platform)
    lines = [{"message": f"load {n}", "step": "load", "attempt": 1, "ts": 1000 + n, "level": "INFO"} for n in range(5)]
    lines += [{"message": "train 0", "step": "train", "attempt": 2, "level": "ERROR", "extra": {"logger": "x"}, "run": run.id}]
    lines += [{"message": "the runner speaks"}]
    with platform.db.session(write=True) as session:
        assert records.append_logs(session, SYSTEM, TEAM, run.id, lines) == 7
        assert records.append_logs(session, SYSTEM, TEAM, run.id, []) == 0
    every = _logs(platform, run.id)
    assert [line.message for line in every] == [*(f"load {n}" for n in range(5)), "train 0", "the runner speaks"]
    ids = [line.id for line in every]
    assert ids == sorted(ids)
    assert len(set(ids)) == 7
    train, runner = every[5], every[6]
    assert (train.step, train.attempt, train.level, train.extra) == ("train", 2, "ERROR", {"logger": "x"})
    assert (runner.step, runner.attempt, runner.level, runner.extra) == ("", 0, "INFO", None)
    assert runner.ts > 1_600_000_000_000  # stamped on arrival
    assert every[0].ts == 1000

    page = _logs(platform, run.id, limit=2)
    assert [line.message for line in page] == ["load 0", "load 1"]
    page = _logs(platform, run.id, after=page[-1].id, limit=2)
    assert [line.message for line in page] == ["load 2", "load 3"]
    assert _logs(platform, run.id, after=ids[-1]) == []
    assert [line.message for line in _logs(platform, run.id, step="train")] == ["train 0"]
    assert [line.message for line in _logs(platform, run.id, step="load", after=ids[3])] == ["load 4"]
    assert [line.message for line in _logs(platform, run.id, step="")] == ["the runner speaks"]

    other = _run(platform)
    with platform.db.session(write=True) as session:
        records.append_logs(session, SYSTEM, TEAM, other.id, [{"message": "elsewhere"}])
    assert len(_logs(platform, run.id)) == 7


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ({"step": "load"}, "message None"),
        ({"message": 3}, "message 3"),
        ({"message": "x", "colour": "red"}, "colour"),
        ({"message": "x", "step": "a/b"}, "step 'a/b'"),
        ({"message": "x", "attempt": -1}, "attempt -1"),
        ({"message": "x", "ts": "now"}, "ts 'now'"),
        ({"message": "x", "level": "WAY TOO LOUD!"}, "level"),
        ({"message": "x", "extra": ["a"]}, "extra is a list"),
        ({"message": "x", "run": "another-run"}, "belongs to run 'another-run'"),
        ({"message": "é" * (records.MAX_LOG_MESSAGE_BYTES // 2 + 1)}, "at most 65536"),
        ({"message": "x" * (records.MAX_LOG_MESSAGE_BYTES + 1)}, "65537 bytes"),
    ],
)
def test_bad_log_lines_are_refused_and_nothing_is_written(
    platform: Platform, teams: tuple[str, str], line: dict[str, Any], words: str
) -> None:
    run = _run(platform)
    with pytest.raises(InvalidInput) as refused, platform.db.session(write=True) as session:
        records.append_logs(session, SYSTEM, TEAM, run.id, [{"message": "fine"}, line])
    assert words in refused.value.message
    assert _logs(platform, run.id) == []


def test_too_many_lines_at_once_are_refused(platform: Platform, teams: tuple[str, str]) -> None:
    run = _run(platform)
    with platform.db.session(write=True) as session:
        assert records.append_logs(session, SYSTEM, TEAM, run.id, [{"message": "m"}] * records.MAX_LOG_LINES) == 10_000
    with pytest.raises(InvalidInput, match="10001 log lines in one request: at most 10000"):
        with platform.db.session(write=True) as session:
            records.append_logs(session, SYSTEM, TEAM, run.id, [{"message": "m"}] * (records.MAX_LOG_LINES + 1))
    assert len(_logs(platform, run.id, limit=records.MAX_LOG_PAGE)) == 10_000
    for options in ({"limit": 0}, {"limit": records.MAX_LOG_PAGE + 1}, {"after": -1}):
        with pytest.raises(InvalidInput):
            _logs(platform, run.id, **options)


def test_nul_in_a_log_line_is_kept_visible(platform: Platform, teams: tuple[str, str]) -> None:
    run = _run(platform)
    with platform.db.session(write=True) as session:
        records.append_logs(session, SYSTEM, TEAM, run.id, [{"message": "a\x00b"}])
    assert [line.message for line in _logs(platform, run.id)] == ["a\\x00b"]


# -- who may do what ----------------------------------------------------------------------


def _refuses(platform: Platform, error: type[Exception], call: Callable[..., object], *args: Any) -> bool:
    try:
        with platform.db.session(write=True) as session:
            call(session, *args)
    except error:
        return True
    return False


def test_other_tenants_see_nothing(platform: Platform, make_caller: MakeCaller) -> None:
    digest = held_blob(platform, TEAM, b"output")
    run = _run(platform)
    step = _step(platform, run.id, "load", status="succeeded", cache_key="k", outputs={"output": _ref(digest)})
    outsider = make_caller({OTHER: "admin"})
    calls = {
        "create_run": lambda s: records.create_run(s, outsider, TEAM, "p", {}, {}),
        "get_run": lambda s: records.get_run(s, outsider, TEAM, run.id),
        "list_runs": lambda s: records.list_runs(s, outsider, TEAM),
        "update_run": lambda s: records.update_run(s, outsider, TEAM, run.id, status="failed"),
        "record_step": lambda s: records.record_step(s, outsider, TEAM, run.id, "train", 1),
        "list_steps": lambda s: records.list_steps(s, outsider, TEAM, run.id),
        "cached_step": lambda s: records.cached_step(s, outsider, TEAM, "k"),
        "append_logs": lambda s: records.append_logs(s, outsider, TEAM, run.id, [{"message": "x"}]),
        "read_logs": lambda s: records.read_logs(s, outsider, TEAM, run.id),
        "held_blob": lambda s: blobs.readable(s, outsider, TEAM, digest),
    }
    assert [name for name, call in calls.items() if not _refuses(platform, NotVisible, call)] == []
    # Naming their run from one's own namespace finds nothing either.
    with platform.db.session() as session:
        with pytest.raises(NotFound):
            records.get_run(session, outsider, OTHER, run.id)
        with pytest.raises(NotFound):
            blobs.readable(session, outsider, OTHER, digest)
        assert records.cached_step(session, outsider, OTHER, "k") is None
    with platform.db.session() as session:
        assert session.get(StepRun, step.id) is not None
        assert records.get_run(session, SYSTEM, TEAM, run.id).status == "running"


def test_viewers_read_and_only_editors_write(platform: Platform, make_caller: MakeCaller) -> None:
    run = _run(platform)
    viewer, editor = make_caller({TEAM: "viewer"}), make_caller({TEAM: "editor"})
    writes = {
        "create_run": lambda s, c: records.create_run(s, c, TEAM, "p", {}, {}),
        "update_run": lambda s, c: records.update_run(s, c, TEAM, run.id, error="x"),
        "record_step": lambda s, c: records.record_step(s, c, TEAM, run.id, "load", 1),
        "append_logs": lambda s, c: records.append_logs(s, c, TEAM, run.id, [{"message": "x"}]),
    }
    assert [name for name, write in writes.items() if not _refuses(platform, PermissionDenied, write, viewer)] == []
    for write in writes.values():
        with platform.db.session(write=True) as session:
            write(session, editor)
    with platform.db.session() as session:
        assert [r.pipeline for r in records.list_runs(session, viewer, TEAM)] == ["p", "quickstart"]
        assert records.get_run(session, viewer, TEAM, run.id).error == "x"
        assert [s.step for s in records.list_steps(session, viewer, TEAM, run.id)] == ["load"]
        assert [line.message for line in records.read_logs(session, viewer, TEAM, run.id)] == ["x"]
        assert records.cached_step(session, viewer, TEAM, "none") is None
    read_only = make_caller({TEAM: "editor"}, scopes=("read",))
    with pytest.raises(PermissionDenied), platform.db.session(write=True) as session:
        records.create_run(session, read_only, TEAM, "p", {}, {})


def test_blobs_are_found_only_where_they_were_uploaded(platform: Platform, teams: tuple[str, str]) -> None:
    digest = held_blob(platform, TEAM, b"bytes")
    with platform.db.session() as session:
        assert blobs.readable(session, SYSTEM, TEAM, digest).size == 5
        with pytest.raises(NotFound, match="has not been uploaded to namespace 'team-b'"):
            blobs.readable(session, SYSTEM, OTHER, digest)
        with pytest.raises(NotFound):
            blobs.readable(session, SYSTEM, TEAM, "not-a-digest")


# -- lineage ------------------------------------------------------------------------------


def _version(platform: Platform, *, tags: dict[str, str] | None = None, run_id: str | None = None) -> int:
    digest = held_blob(platform, TEAM, b"weights")
    with platform.db.session(write=True) as session:
        if not models.list_in(session, SYSTEM, TEAM):
            models.create(session, SYSTEM, TEAM, "churn")
        draft = VersionDraft(digest, "sklearn", run_id=run_id, tags=tags or {})
        return models.create_version(session, SYSTEM, platform.artifacts, TEAM, "churn", draft).version


def test_lineage_names_the_pipeline_run_from_the_version_or_its_run(platform: Platform, make_caller: MakeCaller) -> None:
    pipeline_run = _run(platform, pipeline="fine-tune")
    tagged = _version(platform, tags={"shipyard.pipeline_run": pipeline_run.id, "shipyard.step": "train"})
    with platform.db.session(write=True) as session:
        experiment = experiments.create(session, SYSTEM, TEAM, "exp")
        run = runs.create(session, SYSTEM, TEAM, experiment.id, tags={"shipyard.pipeline_run": pipeline_run.id})
    through_run = _version(platform, run_id=run.id)
    untagged = _version(platform)
    theirs = _run(platform, OTHER)
    foreign = _version(platform, tags={"shipyard.pipeline_run": theirs.id})
    ghost = _version(platform, tags={"shipyard.pipeline_run": "0" * 32})
    member = make_caller({TEAM: "viewer"})

    def entry(version: int, caller: Caller = member) -> Any:
        with platform.db.session() as session:
            return lineage.of_version(session, caller, TEAM, "churn", version)["pipeline_run"]

    expected = {"id": pipeline_run.id, "pipeline": "fine-tune", "status": "running"}
    assert entry(tagged) == {**expected, "step": "train"}
    assert entry(through_run) == {**expected, "step": None}
    assert entry(untagged) is None
    assert entry(ghost) is None
    assert entry(foreign) is None  # a run the caller may not see is not shown
    assert entry(foreign, SYSTEM) == {"id": theirs.id, "pipeline": "quickstart", "status": "running", "step": None}
