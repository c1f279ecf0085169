"""One attempt of one step, as shipped to an executor, and what comes back.

A ``StepTask`` carries everything the step needs as plain data (the step by reference,
its inputs as materialized bytes, its literal parameters), so any executor can run it in
another process or on another host without a line to the control plane. ``execute`` is
what runs there: it loads the inputs, calls the function, materializes the outputs and
captures the step's logs as structured JSON lines tagged with run, step and attempt, and
measures what the attempt used (CPU seconds and peak resident memory of the process).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, Any

import orjson
import psutil  # type: ignore[import-untyped]

from shipyard.errors import InvalidInput
from shipyard.pipelines import materializers
from shipyard.pipelines.dsl import Step

_resource: ModuleType | None
try:
    import resource as _resource
except ImportError:  # pragma: no cover - Windows has no getrusage
    _resource = None

RUN_ID_VARIABLE = "SHIPYARD_PIPELINE_RUN_ID"
STEP_VARIABLE = "SHIPYARD_STEP_RUN"  # "<run id>/<step>", read by the SDK to tag tracking runs and model versions
USAGE_SAMPLE_S = 0.05  # how often a long-lived worker's memory is sampled while a step runs
MB = 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    """Materialized bytes and the materializer that reads them back."""

    data: bytes
    materializer: str
    description: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepTask:
    run_id: str
    node: str
    attempt: int
    step: Step
    inputs: Mapping[str, Artifact]
    params: Mapping[str, Any]
    environment: Mapping[str, str] = field(default_factory=dict)
    log_path: str | None = None  # where lines also go as they happen, for `shipyard logs --follow`


@dataclass(frozen=True)
class StepResult:
    outputs: Mapping[str, Artifact]
    logs: list[dict[str, Any]]
    error: str | None = None  # "ExceptionType: message"; None on success
    seconds: float = 0.0
    usage: Mapping[str, float] | None = None  # {"cpu_seconds", "max_rss_mb"}; None when the worker never reported


def execute(task: StepTask, *, fresh_process: bool = False) -> StepResult:
    """Run the step in this process; never raises for the step's own failures.

    ``fresh_process``: this process was started for this attempt alone (the local executor),
    so its peak resident memory is the attempt's; a long-lived worker (Ray's) samples instead.
    """
    started = time.perf_counter()
    meter = _Meter(fresh_process)
    lines: list[dict[str, Any]] = []
    sink = _LineSink(task, lines)
    with _environment(task.environment), _captured(sink):
        try:
            kwargs = {name: materializers.load(a.data, a.materializer) for name, a in task.inputs.items()}
            kwargs.update(task.params)
            value = task.step.fn(**kwargs)
            outputs = _materialize(task, value)
        except BaseException as exc:  # the step's failure is data for the runner, whatever it is
            if isinstance(exc, KeyboardInterrupt):
                meter.stop()
                raise
            usage = meter.stop()
            sink.emit("ERROR", "".join(traceback.format_exception(exc)).rstrip())
            sink.close()
            return StepResult({}, lines, f"{type(exc).__name__}: {exc}", time.perf_counter() - started, usage)
    usage = meter.stop()
    sink.close()
    return StepResult(outputs, lines, None, time.perf_counter() - started, usage)


class _Meter:
    """CPU seconds (user + system, every thread) and peak resident memory of this process while a step runs.

    A process forked for one attempt reads its peak from the kernel (``ru_maxrss``, which a
    forked child starts afresh, so it is this attempt's). A worker that runs many tasks
    (Ray's) samples its resident size with psutil every ``USAGE_SAMPLE_S`` in a thread
    instead, since its kernel peak may come from an earlier task.
    """

    def __init__(self, fresh_process: bool) -> None:
        self.cpu_before = time.process_time()
        self.kernel_peak = fresh_process and _max_rss_bytes() is not None
        self.peak = 0
        self._stopped = threading.Event()
        self._sampler: threading.Thread | None = None
        if not self.kernel_peak:
            self.process = psutil.Process()
            self.peak = self.process.memory_info().rss
            self._sampler = threading.Thread(target=self._sample, name="shipyard-step-usage", daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        while not self._stopped.wait(USAGE_SAMPLE_S):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> dict[str, float]:
        cpu = max(0.0, time.process_time() - self.cpu_before)
        if self._sampler is not None:
            self._stopped.set()
            self._sampler.join()
            peak = max(self.peak, self.process.memory_info().rss)
        else:
            peak = _max_rss_bytes() or 0
        return {"cpu_seconds": round(cpu, 6), "max_rss_mb": round(peak / MB, 3)}


def _max_rss_bytes() -> int | None:
    """This process's peak resident size from the kernel, where it reports one (not on Windows)."""
    if _resource is None:  # pragma: no cover - Windows
        return None
    peak = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # bytes on macOS, KiB on Linux


def _materialize(task: StepTask, value: Any) -> dict[str, Artifact]:
    names = task.step.options.outputs
    if len(names) == 1:
        values = {names[0]: value}
    else:
        if not isinstance(value, tuple | list) or len(value) != len(names):
            got = f"{len(value)} values" if isinstance(value, tuple | list) else type(value).__name__
            raise InvalidInput(f"step '{task.node}' declares outputs {list(names)} but returned {got}: return a tuple")
        values = dict(zip(names, value, strict=True))
    outputs: dict[str, Artifact] = {}
    for name, item in values.items():
        data, materializer, description = materializers.dump(item, task.step.options.materializer)
        outputs[name] = Artifact(data, materializer, description)
    return outputs


class _LineSink:
    """Collects JSON log lines and, when asked, appends them to a file as they come."""

    def __init__(self, task: StepTask, lines: list[dict[str, Any]]) -> None:
        self.task = task
        self.lines = lines
        self._file: IO[bytes] | None = open(task.log_path, "ab") if task.log_path else None  # noqa: SIM115 (closed in close())

    def emit(self, level: str, message: str, extra: Mapping[str, Any] | None = None) -> None:
        line: dict[str, Any] = {
            "ts": int(time.time() * 1000),
            "level": level,
            "message": message,
            "step": self.task.node,
            "attempt": self.task.attempt,
            "run": self.task.run_id,
        }
        if extra:
            line["extra"] = dict(extra)
        self.lines.append(line)
        if self._file is not None:
            self._file.write(orjson.dumps(line, default=str) + b"\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Stream(io.TextIOBase):
    """print() inside a step becomes log lines (one per line of text)."""

    def __init__(self, sink: _LineSink, level: str) -> None:
        self.sink = sink
        self.level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self.sink.emit(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.sink.emit(self.level, self._pending)
            self._pending = ""


class _Handler(logging.Handler):
    def __init__(self, sink: _LineSink) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self.sink.emit(record.levelname, message, {"logger": record.name})


@contextlib.contextmanager
def _captured(sink: _LineSink) -> Iterator[None]:
    out, err = _Stream(sink, "INFO"), _Stream(sink, "ERROR")
    handler = _Handler(sink)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    finally:
        out.flush()
        err.flush()
        root.removeHandler(handler)
        root.setLevel(previous_level)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
