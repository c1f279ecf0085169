"""The runner: walks a pipeline's graph, asks the cache, hands steps to an executor, records it all.

Everything the runner learns goes to the control plane through a ``Recorder`` (the SDK in
practice), so a pipeline run, its steps, their inputs and outputs (content digests), their
logs and their cache hits are all records, and a model registered inside a step is linked
to the run without user code (through the environment the step runs in).

A failed step fails the run after its retries (exponential backoff). Steps already running
finish and are recorded; nothing new starts. ``resume`` starts a new run of the same
pipeline and parameters that reuses every step that finished in the old one and whose
cache key is unchanged, and reruns the rest.

Each request to the control plane costs a few milliseconds, so a step makes as few as it
can: one to ask the cache and record a hit (when caching is on), and one to report the
attempt once it has ended, with its outputs (the bytes of small ones too), what it used
and its last log lines, all recorded in one transaction. A step that runs for longer than
``RECORD_RUNNING_S`` is also recorded as running meanwhile, and its log lines are shipped
every ``LOG_SHIP_S`` for ``shipyard logs --follow``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from shipyard.errors import Conflict, IntegrityFailure, InvalidInput, StepFailed
from shipyard.pipelines import materializers
from shipyard.pipelines.cache import cache_key, environment
from shipyard.pipelines.dsl import Pipeline
from shipyard.pipelines.executors.base import Executor, Handle
from shipyard.pipelines.graph import Graph, Node
from shipyard.pipelines.task import RUN_ID_VARIABLE, STEP_VARIABLE, Artifact, StepResult, StepTask

log = logging.getLogger("shipyard.pipelines")

FINISHED = ("succeeded", "cached")
WAIT_S = 0.05  # longest the loop waits for a step to end before it looks at timeouts, logs and cancellation
RECENT_MAX_BYTES = 64 * 1024 * 1024
INLINE_MAX_BYTES = 256 * 1024  # outputs (together) and log lines up to this size travel in a step's report
LOG_BATCH_LINES = 10_000  # the most lines the API takes in one request
LOG_SHIP_S = 0.5
RECORD_RUNNING_S = 0.5  # a step still running after this long is recorded as running; a shorter one only once it ends
STATUS_CHECK_S = 1.0  # how often a running run looks whether someone cancelled it
QUEUE_POLL_S = 0.5  # how often a queued run looks whether it was admitted


class Recorder(Protocol):
    """What the runner needs from the control plane, for one namespace."""

    namespace: str

    def create_run(self, pipeline: str, *, params: Mapping[str, Any], graph: Mapping[str, Any], executor: str,
                   resumed_from: str | None, priority: int, resources: Mapping[str, Any],
                   trigger: str | None) -> dict[str, Any]: ...  # fmt: skip
    def update_run(self, run_id: str, *, status: str, error: str | None = None) -> dict[str, Any]: ...
    def get_run(self, run_id: str) -> dict[str, Any]: ...
    def record_step(self, run_id: str, step: str, attempt: int, **fields: Any) -> dict[str, Any]: ...
    def record_cached(self, run_id: str, step: str, attempt: int, *, cache_key: str, inputs: Mapping[str, Any],
                      executor: str) -> dict[str, Any] | None: ...  # fmt: skip
    def list_steps(self, run_id: str) -> list[dict[str, Any]]: ...
    def append_logs(self, run_id: str, lines: list[dict[str, Any]]) -> None: ...
    def put_blob(self, data: bytes) -> str: ...
    def get_blob(self, digest: str) -> bytes: ...
    def step_environment(self) -> dict[str, str]: ...


# (kind, node, details): queued and admitted (node ''), started, cached, retrying, succeeded, failed
Event = Callable[[str, str, Mapping[str, Any]], None]


@dataclass
class StepOutcome:
    node: str
    status: str  # succeeded | cached | failed
    attempt: int
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {digest, materializer, size, description}
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    status: str
    steps: dict[str, StepOutcome]
    error: str | None
    recorder: Recorder

    def output(self, node: str, name: str = "output") -> Any:
        """A finished step's output, loaded back into Python."""
        outcome = self.steps.get(node)
        if outcome is None or name not in outcome.outputs:
            known = ", ".join(sorted(self.steps))
            raise InvalidInput(f"run {self.run_id} has no output {name!r} of step {node!r}: its steps are {known}")
        ref = outcome.outputs[name]
        return materializers.load(self.recorder.get_blob(ref["digest"]), ref["materializer"])


@dataclass
class _Running:
    handle: Handle
    attempt: int
    started: float  # on the runner's clock, for timeouts
    key: str
    inputs: dict[str, dict[str, Any]]
    log_path: Path
    started_at: int  # ms since the epoch, as recorded
    resources: dict[str, Any]
    log_offset: int = 0
    recorded: bool = False  # whether it was recorded as running (steps that end soon are recorded once, finished)


class Runner:
    def __init__(
        self,
        recorder: Recorder,
        executor: Executor,
        *,
        cache: bool = True,
        on_event: Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recorder = recorder
        self.executor = executor
        self.cache = cache
        self.on_event = on_event or (lambda kind, node, details: None)
        self.clock = clock
        self.environment = environment()
        self._recent: dict[str, bytes] = {}
        self._recent_bytes = 0

    # -- entry points -----------------------------------------------------------------

    def run(
        self, pipeline: Pipeline, params: Mapping[str, Any] | None = None, *, priority: int = 0, trigger: str | None = None
    ) -> RunResult:
        """Run ``pipeline``: it waits in its namespace's queue first when the quota is taken."""
        graph = pipeline.build(**dict(params or {}))
        return self._execute(pipeline, graph, reuse={}, resumed_from=None, priority=priority, trigger=trigger)

    def resume(self, run_id: str) -> RunResult:
        old = self.recorder.get_run(run_id)
        if old.get("status") not in ("failed", "cancelled"):
            raise InvalidInput(f"run {run_id} is {old.get('status')}: only failed or cancelled runs can be resumed")
        pipeline = load_pipeline(old.get("graph") or {})
        reuse: dict[str, dict[str, Any]] = {}
        for record in self.recorder.list_steps(run_id):
            if record.get("status") in FINISHED:
                reuse[str(record["step"])] = record
        graph = pipeline.build(**dict(old.get("params") or {}))
        priority = int(old.get("priority") or 0)
        return self._execute(pipeline, graph, reuse=reuse, resumed_from=run_id, priority=priority, trigger=None)

    # -- the loop ---------------------------------------------------------------------

    def _execute(
        self,
        pipeline: Pipeline,
        graph: Graph,
        *,
        reuse: Mapping[str, dict[str, Any]],
        resumed_from: str | None,
        priority: int,
        trigger: str | None,
    ) -> RunResult:
        description = {**graph.to_dict(), "ref": pipeline_ref(pipeline)}
        run = self.recorder.create_run(
            pipeline.name, params=graph.params, graph=description, executor=self.executor.name, resumed_from=resumed_from,
            priority=priority, resources=run_demand(graph), trigger=trigger,
        )  # fmt: skip
        run_id = str(run["id"])
        if run.get("status") == "queued" and not self._wait_for_admission(run_id):
            return RunResult(run_id, "cancelled", {}, "cancelled while queued", self.recorder)
        outcomes: dict[str, StepOutcome] = {}
        running: dict[str, _Running] = {}
        retries: dict[str, tuple[float, int]] = {}  # node -> (when, next attempt)
        started: set[str] = set()
        failure: str | None = None
        workdir = Path(tempfile.mkdtemp(prefix="shipyard-run-"))
        last_ship = last_check = self.clock()
        cancelled = False
        try:
            while True:
                if running and self.clock() - last_check >= STATUS_CHECK_S:
                    last_check = self.clock()
                    if self.recorder.get_run(run_id).get("status") == "cancelled":
                        cancelled = True
                        failure = failure or "cancelled"
                        for job in running.values():
                            job.handle.cancel()
                        running.clear()
                        break
                done = {name for name, o in outcomes.items() if o.status in FINISHED}
                if failure is None:
                    for name in graph.ready(done, started):
                        if len(running) >= self.executor.max_parallel:
                            break
                        started.add(name)
                        self._start(run_id, graph.nodes[name], 1, outcomes, running, reuse, workdir)
                    now = self.clock()
                    for name, (when, attempt) in list(retries.items()):
                        if when <= now and len(running) < self.executor.max_parallel:
                            del retries[name]
                            self._start(run_id, graph.nodes[name], attempt, outcomes, running, reuse, workdir)
                for name, job in list(running.items()):
                    node = graph.nodes[name]
                    timeout = node.step.options.timeout_s
                    if job.handle.done():
                        del running[name]
                        failure = self._finish(run_id, node, job, job.handle.result(), outcomes, retries) or failure
                    elif timeout is not None and self.clock() - job.started > timeout:
                        job.handle.cancel()
                        del running[name]
                        timed_out = StepResult({}, [], f"Timeout: step '{name}' ran over its {timeout:g} s timeout")
                        failure = self._finish(run_id, node, job, timed_out, outcomes, retries) or failure
                for job_name, job in running.items():
                    if not job.recorded and self.clock() - job.started >= RECORD_RUNNING_S:
                        self._record_running(run_id, job_name, job)
                if self.clock() - last_ship >= LOG_SHIP_S:
                    last_ship = self.clock()
                    for job in running.values():
                        self._ship_file_logs(run_id, job)
                if not running:
                    if failure is not None:
                        break
                    if not retries and not graph.ready(_finished(outcomes), started):
                        break  # every step has finished, or nothing more can start
                self._wait(graph, running, retries)
        except BaseException as exc:
            for job in running.values():
                job.handle.cancel()
            if isinstance(exc, Conflict) and self.recorder.get_run(run_id).get("status") == "cancelled":
                cancelled = True  # cancelled since the last look: the step that ended can no longer be recorded
            else:
                self.recorder.update_run(run_id, status="cancelled", error="the runner was interrupted")
                raise
        finally:
            _remove_tree(workdir)
        if cancelled:
            self.on_event("cancelled", "", {})
            return RunResult(run_id, "cancelled", outcomes, "cancelled while running", self.recorder)
        complete = all(outcomes.get(name) is not None and outcomes[name].status in FINISHED for name in graph.nodes)
        status = "succeeded" if complete and failure is None else "failed"
        error = None
        if status == "failed":
            reason = failure or "the run stopped before every step finished"
            error = f"{reason} (resume with: {resume_command(run_id, self.recorder.namespace)})"
        self.recorder.update_run(run_id, status=status, error=error)
        return RunResult(run_id, status, outcomes, error, self.recorder)

    def _wait(self, graph: Graph, running: Mapping[str, _Running], retries: Mapping[str, tuple[float, int]]) -> None:
        """Until a running step ends, or the next timeout or retry is due (``WAIT_S`` at the most)."""
        now = self.clock()
        timeout = WAIT_S
        for when, _ in retries.values():
            timeout = min(timeout, when - now)
        for name, job in running.items():
            limit = graph.nodes[name].step.options.timeout_s
            if limit is not None:
                timeout = min(timeout, job.started + limit - now)
        if running:
            self.executor.wait([job.handle for job in running.values()], max(timeout, 0.0))
        elif retries and timeout > 0:
            time.sleep(timeout)  # nothing runs: the next retry is what there is to wait for

    def _wait_for_admission(self, run_id: str) -> bool:
        """Wait while the run is queued; False when it was cancelled there."""
        self.on_event("queued", "", {"run_id": run_id})
        while True:
            try:
                time.sleep(QUEUE_POLL_S)
                status = self.recorder.get_run(run_id).get("status")
            except BaseException:
                self.recorder.update_run(run_id, status="cancelled", error="the runner was interrupted while queued")
                raise
            if status == "running":
                self.on_event("admitted", "", {"run_id": run_id})
                return True
            if status != "queued":
                self.on_event("cancelled", "", {"run_id": run_id})
                return False

    def _start(
        self,
        run_id: str,
        node: Node,
        attempt: int,
        outcomes: dict[str, StepOutcome],
        running: dict[str, _Running],
        reuse: Mapping[str, dict[str, Any]],
        workdir: Path,
    ) -> None:
        inputs = {arg: outcomes[ref.node].outputs[ref.name] for arg, ref in node.inputs.items()}
        key = cache_key(node, {arg: ref["digest"] for arg, ref in inputs.items()}, self.environment)
        refs = {arg: {"digest": ref["digest"], "materializer": ref["materializer"]} for arg, ref in inputs.items()}
        if attempt == 1:
            earlier = reuse.get(node.name)
            if earlier is not None and earlier.get("cache_key") == key:
                outputs = dict(earlier.get("outputs") or {})
                self.recorder.record_step(
                    run_id, node.name, 1, status="cached", cache_key=key, inputs=refs, outputs=outputs,
                    cached_from=earlier.get("id"), executor=self.executor.name,
                )  # fmt: skip
                self._cached(node, outputs, outcomes, "resumed")
                return
            if self.cache and node.step.options.cache:
                hit = self.recorder.record_cached(run_id, node.name, 1, cache_key=key, inputs=refs, executor=self.executor.name)
                if hit is not None:
                    self._cached(node, dict(hit.get("outputs") or {}), outcomes, "cache")
                    return
        artifacts = {arg: Artifact(self._blob(ref["digest"]), ref["materializer"]) for arg, ref in inputs.items()}
        log_path = workdir / f"{node.name}.{attempt}.jsonl"
        env = {**self.recorder.step_environment(), RUN_ID_VARIABLE: run_id, STEP_VARIABLE: f"{run_id}/{node.name}"}
        task = StepTask(run_id, node.name, attempt, node.step, artifacts, dict(node.params), env, str(log_path))
        resources = dataclasses.asdict(node.step.options.resources)
        started_at = _now_ms()
        handle = self.executor.submit(task)
        running[node.name] = _Running(handle, attempt, self.clock(), key, refs, log_path, started_at, resources)
        self.on_event("started", node.name, {"attempt": attempt})

    def _cached(self, node: Node, outputs: dict[str, dict[str, Any]], outcomes: dict[str, StepOutcome], source: str) -> None:
        outcomes[node.name] = StepOutcome(node.name, "cached", 1, outputs)
        self.on_event("cached", node.name, {"source": source})

    def _record_running(self, run_id: str, node: str, job: _Running) -> None:
        self.recorder.record_step(run_id, node, job.attempt, status="running", **self._attempt_fields(job))
        job.recorded = True

    def _attempt_fields(self, job: _Running) -> dict[str, Any]:
        return {
            "cache_key": job.key,
            "inputs": job.inputs,
            "executor": self.executor.name,
            "resources": job.resources,
            "started_at": job.started_at,
        }

    def _finish(
        self,
        run_id: str,
        node: Node,
        job: _Running,
        result: StepResult,
        outcomes: dict[str, StepOutcome],
        retries: dict[str, tuple[float, int]],
    ) -> str | None:
        """Record the attempt; returns the run's failure message when this step has failed for good."""
        report = {**self._attempt_fields(job), "finished_at": _now_ms()}
        if result.usage is not None:
            report["usage"] = dict(result.usage)
        logs = self._last_logs(run_id, job, result)
        if logs:
            report["logs"] = logs
        if result.error is None:
            outputs, inline, uploads = self._outputs(result)
            report.update(status="succeeded", outputs=outputs, blobs=inline)
            self._report(run_id, node.name, job.attempt, uploads, report)
            outcomes[node.name] = StepOutcome(node.name, "succeeded", job.attempt, outputs)
            self.on_event("succeeded", node.name, {"attempt": job.attempt, "seconds": result.seconds})
            return None
        report.update(status="failed", error=result.error)
        self.recorder.record_step(run_id, node.name, job.attempt, **report)
        options = node.step.options
        if job.attempt <= options.retries:
            delay = options.retry_backoff_s * 2 ** (job.attempt - 1)
            retries[node.name] = (self.clock() + delay, job.attempt + 1)
            self.on_event("retrying", node.name, {"attempt": job.attempt, "error": result.error, "delay": delay})
            return None
        outcomes[node.name] = StepOutcome(node.name, "failed", job.attempt, {}, result.error)
        self.on_event("failed", node.name, {"attempt": job.attempt, "error": result.error})
        tries = f"attempt {job.attempt} of {options.retries + 1}" if options.retries else "no retries"
        return f"step '{node.name}' failed ({tries}): {result.error}"

    def _report(self, run_id: str, node: str, attempt: int, uploads: Mapping[str, bytes], report: dict[str, Any]) -> None:
        """Upload the large outputs, then record the attempt with the small ones in one request."""
        for digest, data in uploads.items():
            stored = self.recorder.put_blob(data)
            if stored != digest:
                raise IntegrityFailure(f"output of step '{node}' was stored as {stored}, expected sha256 {digest}: run it again")
        self.recorder.record_step(run_id, node, attempt, **report)

    def _outputs(self, result: StepResult) -> tuple[dict[str, dict[str, Any]], dict[str, bytes], dict[str, bytes]]:
        """The outputs' records, and their bytes: those small enough to travel in the report, and those to upload first."""
        outputs: dict[str, dict[str, Any]] = {}
        inline: dict[str, bytes] = {}
        uploads: dict[str, bytes] = {}
        inline_bytes = 0
        for name, artifact in result.outputs.items():
            data = artifact.data
            digest = hashlib.sha256(data).hexdigest()
            if inline_bytes + len(data) <= INLINE_MAX_BYTES:
                inline[digest] = data
                inline_bytes += len(data)
            else:
                uploads[digest] = data
            self._remember(digest, data)
            outputs[name] = {
                "digest": digest,
                "materializer": artifact.materializer,
                "size": len(data),
                "description": dict(artifact.description),
            }
        return outputs, inline, uploads

    def _blob(self, digest: str) -> bytes:
        found = self._recent.get(digest)
        return found if found is not None else self.recorder.get_blob(digest)

    def _remember(self, digest: str, data: bytes) -> None:
        """Keep small outputs of this run at hand, so the next step gets them without a download."""
        if len(data) > RECENT_MAX_BYTES:
            return
        self._recent[digest] = data
        self._recent_bytes += len(data)
        while self._recent_bytes > RECENT_MAX_BYTES:
            oldest = next(iter(self._recent))
            self._recent_bytes -= len(self._recent.pop(oldest))

    def _ship_file_logs(self, run_id: str, job: _Running) -> None:
        """Send the lines a running step has written since the last time (for ``shipyard logs --follow``)."""
        lines, _ = self._new_file_lines(job)
        self._send_logs(run_id, lines)

    def _last_logs(self, run_id: str, job: _Running, result: StepResult) -> list[dict[str, Any]]:
        """An ended attempt's lines not sent yet: returned to travel in its report when small, else sent now."""
        if job.log_path.exists():
            lines, size = self._new_file_lines(job)
        else:  # executors on other hosts send the lines back with the result
            lines = list(result.logs)
            size = sum(len(str(line.get("message", ""))) + 100 for line in lines)
        if size <= INLINE_MAX_BYTES and len(lines) <= LOG_BATCH_LINES:
            return lines
        self._send_logs(run_id, lines)
        return []

    def _send_logs(self, run_id: str, lines: list[dict[str, Any]]) -> None:
        for first in range(0, len(lines), LOG_BATCH_LINES):
            self.recorder.append_logs(run_id, lines[first : first + LOG_BATCH_LINES])

    @staticmethod
    def _new_file_lines(job: _Running) -> tuple[list[dict[str, Any]], int]:
        """Whole lines the step wrote to its log file since the last read, and their size in bytes."""
        if not job.log_path.exists():
            return [], 0
        with open(job.log_path, "rb") as handle:
            handle.seek(job.log_offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        job.log_offset += len(complete)
        return [orjson.loads(line) for line in complete.splitlines() if line.strip()], len(complete)


def run_demand(graph: Graph) -> dict[str, float]:
    """What a run asks its namespace's quota for: the largest request of any of its steps."""
    demand = {"cpu": 0.0, "memory_mb": 0.0, "gpu": 0.0}
    for node in graph.nodes.values():
        resources = node.step.options.resources
        demand["cpu"] = max(demand["cpu"], resources.cpu)
        demand["memory_mb"] = max(demand["memory_mb"], float(resources.memory_mb))
        demand["gpu"] = max(demand["gpu"], resources.gpu)
    return demand


def _now_ms() -> int:
    return int(time.time() * 1000)


def _finished(outcomes: Mapping[str, StepOutcome]) -> set[str]:
    return {name for name, outcome in outcomes.items() if outcome.status in FINISHED}


def pipeline_ref(pipeline: Pipeline) -> dict[str, str]:
    return {"module": pipeline.fn.__module__, "qualname": pipeline.fn.__qualname__}


def load_pipeline(description: Mapping[str, Any]) -> Pipeline:
    """The ``Pipeline`` a run was made from, imported again by its module and name."""
    ref = description.get("ref") or {}
    module_name, qualname = ref.get("module"), ref.get("qualname")
    if not module_name or not qualname:
        raise InvalidInput("this run does not record which pipeline made it, so it cannot be resumed")
    try:
        target: Any = importlib.import_module(str(module_name))
        for part in str(qualname).split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"cannot import pipeline {module_name}:{qualname} to resume it ({exc}): run from where it imports"
        ) from exc
    if not isinstance(target, Pipeline):
        raise InvalidInput(f"{module_name}:{qualname} is not a @pipeline")
    return target


def resume_command(run_id: str, namespace: str) -> str:
    return f"shipyard pipeline resume {run_id} -n {namespace}"


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def raise_for(result: RunResult) -> RunResult:
    """``result``, or ``StepFailed`` with the run's error when it failed."""
    if result.status != "succeeded":
        raise StepFailed(result.error or f"pipeline run {result.run_id} {result.status}")
    return result
