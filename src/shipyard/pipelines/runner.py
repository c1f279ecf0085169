"""The runner: walks a pipeline's graph, asks the cache, hands steps to an executor, records it all.

Everything the runner learns goes to the control plane through a ``Recorder`` (the SDK in
practice), so a pipeline run, its steps, their inputs and outputs (content digests), their
logs and their cache hits are all records, and a model registered inside a step is linked
to the run without user code (through the environment the step runs in).

A failed step fails the run after its retries (exponential backoff). Steps already running
finish and are recorded; nothing new starts. ``resume`` starts a new run of the same
pipeline and parameters that reuses every step that finished in the old one and whose
cache key is unchanged, and reruns the rest.
"""

from __future__ import annotations

import dataclasses
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

from shipyard.errors import InvalidInput, StepFailed
from shipyard.pipelines import materializers
from shipyard.pipelines.cache import cache_key, environment
from shipyard.pipelines.dsl import Pipeline
from shipyard.pipelines.executors.base import Executor, Handle
from shipyard.pipelines.graph import Graph, Node
from shipyard.pipelines.task import RUN_ID_VARIABLE, STEP_VARIABLE, Artifact, StepResult, StepTask

log = logging.getLogger("shipyard.pipelines")

FINISHED = ("succeeded", "cached")
POLL_S = 0.002
RECENT_MAX_BYTES = 64 * 1024 * 1024
LOG_SHIP_S = 0.5
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
    def list_steps(self, run_id: str) -> list[dict[str, Any]]: ...
    def cached_step(self, key: str) -> dict[str, Any] | None: ...
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
    started: float
    key: str
    inputs: dict[str, dict[str, Any]]
    log_path: Path
    log_offset: int = 0


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
                if self.clock() - last_ship >= LOG_SHIP_S:
                    last_ship = self.clock()
                    for job_name, job in running.items():
                        self._ship_file_logs(run_id, job_name, job)
                if not running:
                    if failure is not None:
                        break
                    if not retries and not graph.ready(_finished(outcomes), started):
                        break  # every step has finished, or nothing more can start
                time.sleep(POLL_S)
        except BaseException:
            for job in running.values():
                job.handle.cancel()
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
        if attempt == 1:
            earlier = reuse.get(node.name)
            if earlier is not None and earlier.get("cache_key") == key:
                self._cached(run_id, node, key, inputs, earlier, outcomes, "resumed")
                return
            if self.cache and node.step.options.cache:
                hit = self.recorder.cached_step(key)
                if hit is not None:
                    self._cached(run_id, node, key, inputs, hit, outcomes, "cache")
                    return
        refs = {arg: {"digest": ref["digest"], "materializer": ref["materializer"]} for arg, ref in inputs.items()}
        self.recorder.record_step(
            run_id, node.name, attempt, status="running", cache_key=key, inputs=refs, executor=self.executor.name,
            resources=dataclasses.asdict(node.step.options.resources),
        )  # fmt: skip
        artifacts = {arg: Artifact(self._blob(ref["digest"]), ref["materializer"]) for arg, ref in inputs.items()}
        log_path = workdir / f"{node.name}.{attempt}.jsonl"
        env = {**self.recorder.step_environment(), RUN_ID_VARIABLE: run_id, STEP_VARIABLE: f"{run_id}/{node.name}"}
        task = StepTask(run_id, node.name, attempt, node.step, artifacts, dict(node.params), env, str(log_path))
        running[node.name] = _Running(self.executor.submit(task), attempt, self.clock(), key, refs, log_path)
        self.on_event("started", node.name, {"attempt": attempt})

    def _cached(
        self,
        run_id: str,
        node: Node,
        key: str,
        inputs: Mapping[str, dict[str, Any]],
        earlier: Mapping[str, Any],
        outcomes: dict[str, StepOutcome],
        source: str,
    ) -> None:
        outputs = dict(earlier.get("outputs") or {})
        refs = {arg: {"digest": ref["digest"], "materializer": ref["materializer"]} for arg, ref in inputs.items()}
        self.recorder.record_step(
            run_id, node.name, 1, status="cached", cache_key=key, inputs=refs, outputs=outputs,
            cached_from=earlier.get("id"), executor=self.executor.name,
        )  # fmt: skip
        outcomes[node.name] = StepOutcome(node.name, "cached", 1, outputs)
        self.on_event("cached", node.name, {"source": source})

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
        self._ship_file_logs(run_id, node.name, job)
        if not job.log_path.exists() and result.logs:
            self.recorder.append_logs(run_id, result.logs)  # executors on other hosts send logs back with the result
        if result.error is None:
            outputs = {}
            for name, artifact in result.outputs.items():
                digest = self.recorder.put_blob(artifact.data)
                self._remember(digest, artifact.data)
                outputs[name] = {
                    "digest": digest,
                    "materializer": artifact.materializer,
                    "size": len(artifact.data),
                    "description": dict(artifact.description),
                }
            self.recorder.record_step(run_id, node.name, job.attempt, status="succeeded", outputs=outputs)
            outcomes[node.name] = StepOutcome(node.name, "succeeded", job.attempt, outputs)
            self.on_event("succeeded", node.name, {"attempt": job.attempt, "seconds": result.seconds})
            return None
        self.recorder.record_step(run_id, node.name, job.attempt, status="failed", error=result.error)
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

    def _ship_file_logs(self, run_id: str, node: str, job: _Running) -> None:
        if not job.log_path.exists():
            return
        with open(job.log_path, "rb") as handle:
            handle.seek(job.log_offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            return
        job.log_offset += len(complete)
        lines = [orjson.loads(line) for line in complete.splitlines() if line.strip()]
        if lines:
            self.recorder.append_logs(run_id, lines)


def run_demand(graph: Graph) -> dict[str, float]:
    """What a run asks its namespace's quota for: the largest request of any of its steps."""
    demand = {"cpu": 0.0, "memory_mb": 0.0, "gpu": 0.0}
    for node in graph.nodes.values():
        resources = node.step.options.resources
        demand["cpu"] = max(demand["cpu"], resources.cpu)
        demand["memory_mb"] = max(demand["memory_mb"], float(resources.memory_mb))
        demand["gpu"] = max(demand["gpu"], resources.gpu)
    return demand


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
