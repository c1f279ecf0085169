"""The records of pipeline runs: runs, the attempts of their steps, and their log lines.

The runner (on this host or another) writes these through the API as it goes; readers
(the CLI, the dashboard, lineage) find in them what ran, with which inputs and outputs
(content digests), from which cache entry, and what it printed.

A run moves ``queued -> running -> succeeded | failed | cancelled`` (and ``queued ->
cancelled``). Every new run enters its namespace's queue and only admission (``queue``)
starts it; a finished run never runs again: resuming makes a new run that names the old
one in ``resumed_from``. A run that finishes appends a ``pipeline.finished`` event, which
schedules may trigger on. A step attempt moves ``pending -> running -> succeeded | failed``;
``cached`` and ``skipped`` attempts are recorded as such (from ``pending`` at the latest).
A runner may skip ``running`` for a short attempt and report it once, finished: its status,
its outputs (small ones with their bytes), what it used and its last log lines, all in one
transaction, so an attempt is never recorded as succeeded without the outputs it made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from shipyard import events
from shipyard.access import blobs as held_blobs
from shipyard.access import namespaces
from shipyard.access.caller import Caller
from shipyard.access.roles import Action
from shipyard.artifacts import ArtifactStore, StoredBlob
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.pipelines import queue
from shipyard.store.bulk import insert_rows
from shipyard.store.models import NamespaceBlob, PipelineRun, ScheduleFire, StepLog, StepRun, now_ms

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
RUN_FINISHED = frozenset({"succeeded", "failed", "cancelled"})
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"cancelled"}),  # queued -> running is admission's alone
    "running": frozenset({"succeeded", "failed", "cancelled"}),
}
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "cached", "skipped")
STEP_FINISHED = frozenset({"succeeded", "failed", "cached", "skipped"})
STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "succeeded", "failed", "cached", "skipped"}),
    "running": frozenset({"succeeded", "failed"}),
}
EXECUTORS = ("local", "ray")
STEP_FIELDS = frozenset(
    {
        "status", "cache_key", "inputs", "outputs", "error", "cached_from", "executor", "resources", "usage",
        "started_at", "finished_at",
    }
)  # fmt: skip
USAGE_FIELDS = ("cpu_seconds", "max_rss_mb")

MAX_LIST = 1000
MAX_LOG_LINES = 10_000
MAX_LOG_PAGE = 10_000
MAX_LOG_MESSAGE_BYTES = 64 * 1024
MAX_ERROR_CHARS = 64 * 1024
MAX_ATTEMPT = 10_000
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
CACHE_CANDIDATES = 20

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@\[\]-]{0,254}$")
_CACHE_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_LEVEL = re.compile(r"^[A-Za-z0-9_ -]{1,32}$")
_LOGS_TABLE = cast(Table, StepLog.__table__)
_LOG_COLUMNS = ("pipeline_run_id", "step", "attempt", "ts", "level", "message", "extra")


# -- validation ------------------------------------------------------------------------


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid: expected 1-255 letters, digits or _ . : @ [ ] - "
            "(starting with a letter, digit or _), e.g. 'train' or 'train[3]'"
        )
    return value


def _choice(value: Any, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} {value!r} is unknown: expected one of {', '.join(allowed)}")
    return str(value)


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} {value!r} is not valid: expected a whole number from {low} to {high}")
    return value


def _json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} is a {type(value).__name__}: expected a JSON object")
    return dict(value)


def _cache_key(value: Any) -> str:
    if not isinstance(value, str) or not _CACHE_KEY.match(value):
        raise InvalidInput(
            f"cache key {value!r} is not valid: expected 1-255 letters, digits or _ . : - (e.g. a sha256 hex digest)"
        )
    return value


def _artifact_refs(value: Any, what: str) -> dict[str, Any]:
    """``{name: {"digest", "materializer"[, "size", "description"]}}``, digests being sha256 hex."""
    refs = _json_object(value, what)
    allowed = {"digest", "materializer", "size", "description"}
    clean: dict[str, Any] = {}
    for name, ref in refs.items():
        if not isinstance(ref, Mapping) or not isinstance(ref.get("digest"), str) or not _DIGEST.match(ref["digest"]):
            raise InvalidInput(
                f"{what} {name!r} is {ref!r}: expected {{'digest': <sha256 hex of an uploaded blob>, 'materializer': <name>}}"
            )
        unknown = set(ref) - allowed
        if unknown:
            raise InvalidInput(f"{what} {name!r} has unknown fields {sorted(unknown)}: expected some of {sorted(allowed)}")
        materializer = ref.get("materializer")
        if not isinstance(materializer, str) or not 1 <= len(materializer) <= 255:
            raise InvalidInput(f"{what} {name!r} has materializer {materializer!r}: expected a name of 1-255 characters")
        if ref.get("size") is not None:
            _whole(ref["size"], f"{what} {name!r} size", 0, MAX_INT64)
        clean[name] = dict(ref)
    return clean


def _error_text(value: Any) -> str | None:
    """Errors are kept whatever their length (a failure must not be lost), cut at 64 KiB."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"error is a {type(value).__name__}: expected text")
    text = _printable(value)
    if len(text) > MAX_ERROR_CHARS:
        return text[:MAX_ERROR_CHARS] + " ... (truncated)"
    return text


def _printable(text: str) -> str:
    """PostgreSQL text cannot hold NUL: keep it visible instead of refusing a log line or an error."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


# -- runs -------------------------------------------------------------------------------


def create_run(
    session: Session,
    caller: Caller,
    namespace: str,
    pipeline: str,
    params: Mapping[str, Any],
    graph: Mapping[str, Any],
    *,
    priority: int = 0,
    executor: str = "local",
    resumed_from: str | None = None,
    resources: Mapping[str, Any] | None = None,
    trigger: str | None = None,
) -> PipelineRun:
    """Record a new run in its namespace's queue, admitted at once (``running``) when it fits its quota."""
    namespaces.require_exists(session, caller, namespace, Action.WRITE)
    _name(pipeline, "pipeline name")
    if resumed_from is not None:
        get_run(session, caller, namespace, resumed_from)
    asked = _resources(resources)
    queue.check_fits_at_all(session, namespace, asked)
    run = PipelineRun(
        namespace=namespace,
        pipeline=pipeline,
        params=_json_object(params, "params"),
        graph=_json_object(graph, "graph"),
        status="queued",
        priority=_whole(priority, "priority", -MAX_INT32, MAX_INT32),
        executor=_choice(executor, EXECUTORS, "executor"),
        resumed_from=resumed_from,
        resources=asked,
        trigger=_trigger(trigger),
        created_at=now_ms(),
        created_by=caller.name,
    )
    session.add(run)
    session.flush()
    _link_fire(session, run)
    queue.admit(session, namespace)
    return run


def _link_fire(session: Session, run: PipelineRun) -> None:
    """A run a schedule started ("schedule/<name>/<fire id>") is noted on that firing at once."""
    kind, _, rest = (run.trigger or "").partition("/")
    fire_id = rest.rpartition("/")[2]
    if kind != "schedule" or not fire_id or len(fire_id) > 32:
        return
    fire = session.get(ScheduleFire, fire_id)
    if fire is not None and fire.namespace == run.namespace and fire.pipeline_run_id is None:
        fire.pipeline_run_id = run.id


def _resources(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    found = _json_object(value, "resources")
    unknown = set(found) - set(queue.RESOURCES)
    if unknown:
        raise InvalidInput(f"resources {sorted(unknown)} are unknown: expected some of {', '.join(queue.RESOURCES)}")
    for key, amount in found.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount <= MAX_INT64:
            raise InvalidInput(f"resources {key} {amount!r} is not valid: expected a number of at least 0")
    return found


def _trigger(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise InvalidInput(f"trigger {value!r} is not valid: expected 1-255 characters, e.g. 'schedule/nightly/<fire id>'")
    return _printable(value)


def get_run(session: Session, caller: Caller, namespace: str, run_id: str) -> PipelineRun:
    caller.require(Action.READ, namespace)
    run = session.get(PipelineRun, run_id) if isinstance(run_id, str) and len(run_id) <= 32 else None
    if run is None or run.namespace != namespace:
        raise NotFound(f"pipeline run {run_id!r} does not exist in namespace {namespace!r}")
    return run


def list_runs(
    session: Session,
    caller: Caller,
    namespace: str,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[PipelineRun]:
    """Newest first."""
    namespaces.require_exists(session, caller, namespace, Action.READ)
    _whole(limit, "limit", 1, MAX_LIST)
    query = select(PipelineRun).where(PipelineRun.namespace == namespace)
    if pipeline is not None:
        query = query.where(PipelineRun.pipeline == pipeline)
    if status is not None:
        query = query.where(PipelineRun.status == _choice(status, RUN_STATUSES, "pipeline run status"))
    query = query.order_by(PipelineRun.created_at.desc(), PipelineRun.id.desc()).limit(limit)
    return list(session.scalars(query))


def update_run(
    session: Session, caller: Caller, namespace: str, run_id: str, *, status: str | None = None, error: str | None = None
) -> PipelineRun:
    """Move a run on (see the module's transitions); sending the status it already has changes nothing."""
    caller.require(Action.WRITE, namespace)
    run = get_run(session, caller, namespace, run_id)
    if status is not None and status != run.status:
        _choice(status, RUN_STATUSES, "pipeline run status")
        allowed = RUN_TRANSITIONS.get(run.status, frozenset())
        if status not in allowed:
            hint = " (resume it: that starts a new run)" if run.status in RUN_FINISHED else ""
            if run.status == "queued" and status == "running":
                hint = " (a queued run starts when its namespace's quota lets it: see `shipyard pipeline queue`)"
            raise Conflict(
                f"pipeline run {run.id} is {run.status} and cannot become {status}: "
                f"expected one of {', '.join(sorted(allowed)) or 'nothing, it has finished'}{hint}"
            )
        run.status = status
        run.finished_at = now_ms()
        if error is not None:
            run.error = _error_text(error)
        session.flush()
        queue.admit(session, namespace)  # capacity freed: the next in the queue may start
        payload = {"run_id": run.id, "status": run.status}
        events.append(session, namespace, events.PIPELINE_FINISHED, run.pipeline, payload, caller.name)
    elif error is not None:
        run.error = _error_text(error)
    return run


# -- steps ------------------------------------------------------------------------------


def _step_values(session: Session, namespace: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - STEP_FIELDS
    if unknown:
        raise InvalidInput(f"step run fields {sorted(unknown)} are unknown: expected some of {sorted(STEP_FIELDS)}")
    values: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "status":
            values[key] = _choice(value, STEP_STATUSES, "step status")
        elif value is None:
            if key in ("inputs", "outputs", "executor"):
                continue  # not given
            values[key] = None
        elif key == "cache_key":
            values[key] = _cache_key(value)
        elif key in ("inputs", "outputs"):
            values[key] = _artifact_refs(value, key[:-1])
        elif key == "error":
            values[key] = _error_text(value)
        elif key == "cached_from":
            values[key] = _cached_source(session, namespace, value).id
        elif key == "executor":
            values[key] = _choice(value, EXECUTORS, "executor")
        elif key == "resources":
            values[key] = _json_object(value, "resources")
        elif key == "usage":
            values[key] = _usage(value)
        else:  # started_at, finished_at
            values[key] = _whole(value, key, 0, MAX_INT64)
    return values


def _usage(value: Any) -> dict[str, float]:
    """``{"cpu_seconds": s, "max_rss_mb": m}``: what an attempt used, as its worker measured it."""
    found = _json_object(value, "usage")
    if set(found) != set(USAGE_FIELDS):
        raise InvalidInput(f"usage has fields {sorted(found)}: expected exactly {', '.join(USAGE_FIELDS)}")
    clean: dict[str, float] = {}
    for key in USAGE_FIELDS:
        amount = found[key]
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount <= MAX_INT64:
            raise InvalidInput(f"usage {key} {amount!r} is not valid: expected a number of at least 0")
        clean[key] = float(amount)
    return clean


def _cached_source(session: Session, namespace: str, step_run_id: Any) -> StepRun:
    source = session.get(StepRun, step_run_id) if isinstance(step_run_id, str) and len(step_run_id) <= 32 else None
    if source is None or source.namespace != namespace or source.status not in ("succeeded", "cached"):
        raise InvalidInput(
            f"cached_from {step_run_id!r} is not a succeeded step run in namespace {namespace!r}: "
            "name the step run that the cache lookup returned"
        )
    return source


def store_blobs(caller: Caller, namespace: str, store: ArtifactStore, data: Mapping[str, bytes]) -> list[StoredBlob]:
    """Write the bytes a step report carries (``{sha256: bytes}``) to the artifact store, checked against their digests.

    Pass what it returns to ``record_step(blobs=...)``, which makes the namespace hold them
    in the same transaction as the attempt that made them.
    """
    if not data:
        return []
    caller.require(Action.WRITE, namespace)
    stored = []
    for digest, content in data.items():
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise InvalidInput(f"blob key {digest!r} is not valid: expected the sha256 hex digest of its bytes")
        stored.append(store.put_chunks([content], expected_digest=digest))
    return stored


def record_step(
    session: Session,
    caller: Caller,
    namespace: str,
    run_id: str,
    step: str,
    attempt: int,
    *,
    blobs: Sequence[StoredBlob] = (),
    logs: Sequence[Mapping[str, Any]] = (),
    **fields: Any,
) -> StepRun:
    """Create or update one attempt of one step (an upsert on run, step and attempt).

    ``fields``: status, cache_key, inputs, outputs, error, cached_from, executor, resources,
    usage, started_at, finished_at; those not given stay as they are. Times not given are set
    as the attempt starts and finishes. A finished attempt accepts only the same values again.
    ``blobs`` (stored by ``store_blobs``) become the namespace's and ``logs`` are appended in
    the same transaction, so a finished attempt is one atomic report.
    """
    caller.require(Action.WRITE, namespace)
    run = get_run(session, caller, namespace, run_id)
    _name(step, "step name")
    _whole(attempt, "attempt", 1, MAX_ATTEMPT)
    values = _step_values(session, namespace, fields)
    if run.status in RUN_FINISHED:
        raise Conflict(f"pipeline run {run.id} has {run.status}: its steps can no longer change (resume it as a new run)")
    for blob in blobs:
        held_blobs.claim(session, caller, namespace, blob)
    # Lock the run so two writers of the same attempt queue instead of clashing on the unique key.
    session.execute(select(PipelineRun.id).where(PipelineRun.id == run.id).with_for_update())
    record = session.scalar(
        select(StepRun).where(StepRun.pipeline_run_id == run.id, StepRun.step == step, StepRun.attempt == attempt)
    )
    now = now_ms()
    repeated = False
    if record is None:
        status = values.setdefault("status", "pending")
        record = StepRun(
            pipeline_run_id=run.id,
            namespace=namespace,
            step=step,
            attempt=attempt,
            inputs={},
            outputs={},
            executor=run.executor,
            created_at=now,
            created_by=caller.name,
        )
        session.add(record)
    else:
        status = values.get("status", record.status)
        _check_step_change(record, status, values)
        repeated = status == record.status and status in STEP_FINISHED  # a retried report: its lines are in
    if not repeated:
        _insert_logs(session, run.id, logs)
    for key, value in values.items():
        setattr(record, key, value)
    if status not in ("pending", "skipped") and record.started_at is None:
        record.started_at = now
    if status in STEP_FINISHED and record.finished_at is None:
        record.finished_at = now
    session.flush()
    return record


def _check_step_change(record: StepRun, status: str, values: Mapping[str, Any]) -> None:
    where = f"step {record.step!r} attempt {record.attempt} of pipeline run {record.pipeline_run_id}"
    if status == record.status:
        if status in STEP_FINISHED:
            changed = sorted(k for k, v in values.items() if getattr(record, k) != v)
            if changed:
                raise Conflict(f"{where} has {status} and is final: {', '.join(changed)} cannot change (record a new attempt)")
        return
    allowed = STEP_TRANSITIONS.get(record.status, frozenset())
    if status not in allowed:
        raise Conflict(
            f"{where} is {record.status} and cannot become {status}: "
            f"expected one of {', '.join(sorted(allowed)) or 'nothing, it has finished (record a new attempt)'}"
        )


def record_cached(
    session: Session,
    caller: Caller,
    namespace: str,
    run_id: str,
    step: str,
    attempt: int,
    *,
    cache_key: str,
    inputs: Mapping[str, Any] | None = None,
    executor: str | None = None,
) -> StepRun | None:
    """Record the attempt as ``cached`` from the newest usable cache entry for ``cache_key``; None when there is none.

    The lookup and the record are one transaction (nothing is recorded on a miss): a runner
    learns whether it may skip a step and records that it did in a single request.
    """
    hit = cached_step(session, caller, namespace, cache_key)
    if hit is None:
        return None
    return record_step(
        session, caller, namespace, run_id, step, attempt, status="cached", cache_key=cache_key, inputs=inputs,
        outputs=dict(hit.outputs or {}), cached_from=hit.id, executor=executor,
    )  # fmt: skip


def list_steps(session: Session, caller: Caller, namespace: str, run_id: str) -> list[StepRun]:
    run = get_run(session, caller, namespace, run_id)
    query = select(StepRun).where(StepRun.pipeline_run_id == run.id).order_by(StepRun.created_at, StepRun.attempt, StepRun.id)
    return list(session.scalars(query))


def cached_step(session: Session, caller: Caller, namespace: str, cache_key: str) -> StepRun | None:
    """The newest succeeded step run of the namespace with this cache key whose outputs are all still held."""
    namespaces.require_exists(session, caller, namespace, Action.READ)
    _cache_key(cache_key)
    candidates = session.scalars(
        select(StepRun)
        .where(StepRun.namespace == namespace, StepRun.cache_key == cache_key, StepRun.status == "succeeded")
        .order_by(StepRun.created_at.desc(), StepRun.id.desc())
        .limit(CACHE_CANDIDATES)
    )
    for candidate in candidates:
        digests = {str(ref.get("digest")) for ref in (candidate.outputs or {}).values() if isinstance(ref, Mapping)}
        if all(session.get(NamespaceBlob, (namespace, digest)) is not None for digest in digests):
            return candidate
    return None


# -- logs -------------------------------------------------------------------------------


def append_logs(session: Session, caller: Caller, namespace: str, run_id: str, lines: Sequence[Mapping[str, Any]]) -> int:
    """Add log lines in one insert; returns how many. A line: {message, step, attempt, ts, level, extra}.

    ``step`` '' and ``attempt`` 0 (the defaults) are the runner's own lines. A line may
    carry ``run`` (the run id, as executors write it), which must be this run.
    """
    caller.require(Action.WRITE, namespace)
    run = get_run(session, caller, namespace, run_id)
    return _insert_logs(session, run.id, lines)


def _insert_logs(session: Session, run_id: str, lines: Sequence[Mapping[str, Any]]) -> int:
    if len(lines) > MAX_LOG_LINES:
        raise InvalidInput(f"{len(lines)} log lines in one request: at most {MAX_LOG_LINES}, send them in several batches")
    now = now_ms()
    rows = [_log_row(run_id, number, line, now) for number, line in enumerate(lines)]
    insert_rows(session, _LOGS_TABLE, _LOG_COLUMNS, rows)
    return len(rows)


def _log_row(run_id: str, number: int, line: Mapping[str, Any], now: int) -> tuple[Any, ...]:
    where = f"log line {number}"
    if not isinstance(line, Mapping):
        raise InvalidInput(f"{where} is a {type(line).__name__}: expected an object with at least 'message'")
    unknown = set(line) - {"message", "step", "attempt", "ts", "level", "extra", "run"}
    if unknown:
        raise InvalidInput(f"{where} has unknown fields {sorted(unknown)}: expected message, step, attempt, ts, level, extra")
    message = line.get("message")
    if not isinstance(message, str):
        raise InvalidInput(f"{where} has message {message!r}: expected text")
    if len(message) * 4 > MAX_LOG_MESSAGE_BYTES and len(message.encode()) > MAX_LOG_MESSAGE_BYTES:
        raise InvalidInput(
            f"{where} has a message of {len(message.encode())} bytes: at most {MAX_LOG_MESSAGE_BYTES} (64 KiB); split it"
        )
    message = _printable(message)
    if line.get("run") not in (None, run_id):
        raise InvalidInput(f"{where} belongs to run {line['run']!r}, not to {run_id!r}")
    step = line.get("step") or ""
    if step:
        _name(step, f"{where} step")
    attempt = _whole(line.get("attempt", 0), f"{where} attempt", 0, MAX_ATTEMPT)
    ts = line.get("ts")
    ts = now if ts is None else _whole(ts, f"{where} ts", 0, MAX_INT64)
    level = line.get("level") or "INFO"
    if not isinstance(level, str) or not _LEVEL.match(level):
        raise InvalidInput(f"{where} has level {level!r}: expected a name such as INFO or ERROR (1-32 characters)")
    extra = line.get("extra")
    if extra is not None:
        extra = orjson.dumps(_json_object(extra, f"{where} extra"), option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    return (run_id, step, attempt, ts, level, message, extra)


def read_logs(
    session: Session,
    caller: Caller,
    namespace: str,
    run_id: str,
    *,
    step: str | None = None,
    after: int = 0,
    limit: int = 1000,
) -> list[StepLog]:
    """Lines with ``id > after`` in id order: page on with the last line's id."""
    run = get_run(session, caller, namespace, run_id)
    _whole(after, "after", 0, MAX_INT64)
    _whole(limit, "limit", 1, MAX_LOG_PAGE)
    query = select(StepLog).where(StepLog.pipeline_run_id == run.id, StepLog.id > after)
    if step is not None:
        query = query.where(StepLog.step == step)
    return list(session.scalars(query.order_by(StepLog.id).limit(limit)))


# -- blobs ------------------------------------------------------------------------------
